"""The AMMO paper's Figures 1–3, with the data produced by the solvers.

* **Figure 1** (Example 1): the user equilibria ``𝒜(p)`` over the price square
  ``(p1, p2)`` for two users with ``Σ12 = ρ`` and ``v1 = v2 = 1``, from
  :meth:`GaussianMarket.user_equilibria` (every equilibrium, by enumeration).
  Both ``00`` and ``11`` are equilibria exactly on
  ``[(2−ρ²)²/(2(4−ρ²)), 1/2]²`` (the paper's text).
* **Figure 2** (§3.4): equilibrium and first-best surplus against ``v`` for two
  users with ``Σ12 = ρ`` and ``v1 = v2 = v``, from :func:`dm_opt.solve`
  (enumeration).  Thresholds ``1`` and ``4/(2−ρ²)²`` are marked: equilibrium
  surplus is negative exactly between them and zero above.
* **Figure 3** (Example 2): equilibrium surplus over ``(ρ, v_h)`` for two
  communities of 10 (``v_l = 0.9``, within-community correlation 1/20), from
  the community solver (:func:`dm_opt.gaussian.backends.community.sweep_values`, exact
  count-vector search; one ``u(m)`` table per ``ρ``); the zero-surplus curve
  is located per ``ρ`` by bisection on ``v_h`` with the same solver.  ``Σ`` is
  positive definite only for ``ρ < (1 + 9/20)/10 = 0.145``.

Closed forms are *not* used to produce data; the tests compare the data with
them.  Plotting needs matplotlib (``pip install 'dm-opt[plot]'``) and uses the
Agg backend.

**Limits and interruption.**  Every ``figure*_data`` takes ``time_limit``
(seconds, checked between grid rows — rows of ``p1`` for Figure 1, points ``v``
for Figure 2, rows ``ρ`` for Figure 3 — the first row always runs) and stops
cleanly on Ctrl-C.  The result then has ``status`` ``time_limit`` /
``interrupted``, only the completed rows (``completed`` of ``total``; missing
cells are NaN / ``None`` in the arrays), and :func:`plot` / :func:`write_csv`
label the output *partial*: a red "PARTIAL" banner and masked (hatched) cells in
the PNG, and a first CSV line ``# PARTIAL ...`` (a comment for pandas
``comment="#"`` / numpy).  Every row written is exact; rows are never guessed.
A Ctrl-C before the first row completes re-raises ``KeyboardInterrupt``.
"""

from __future__ import annotations

import csv
import functools
import uuid
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from dm_opt.core.errors import BackendUnavailable, ProblemError
from dm_opt.core.limits import Deadline
from dm_opt.core.result import Result, Termination
from dm_opt.core.safeio import check_distinct, check_output_file, deferred_signals
from dm_opt.gaussian import api
from dm_opt.gaussian.backends.community import sweep_values
from dm_opt.gaussian.community import CommunityMarket
from dm_opt.gaussian.distributed import DEFAULT_RETRIES, _dask, release
from dm_opt.gaussian.market import GaussianMarket
from dm_opt.gaussian.parametric import no_partial_answer

FIGURES = ("fig1", "fig2", "fig3")
#: Example 2's limit on the cross correlation (Σ ≻ 0 iff ρ < (1 + 9·(1/20))/10).
EXAMPLE2_RHO_MAX = (1.0 + 9.0 / 20.0) / 10.0
#: Colour of grid cells not computed (partial figures).
_MISSING_COLOR = "#fcbba1"


@dataclass
class FigureData(Result):
    """Rows for the CSV and arrays for the plot of one figure.

    ``status`` ``optimal`` = every grid row computed; ``time_limit`` / ``interrupted`` =
    only ``completed`` of ``total`` rows (see the module docstring), ``message`` says which.
    Result protocol: no scalar objective (``objective``/``bound`` are ``nan``).
    """

    family: ClassVar[str] = "gaussian"

    name: str
    columns: tuple
    rows: list
    arrays: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    status: Termination = Termination.OPTIMAL
    completed: int = 0
    total: int = 0
    message: str = ""

    @property
    def partial(self) -> bool:
        return self.status is not Termination.OPTIMAL

    @property
    def extra(self) -> dict:
        return {"completed": self.completed, "total": self.total}

    def _has_answer(self) -> bool:
        return self.completed > 0

    def to_dict(self) -> dict:
        """Protocol fields, the figure's name, columns, rows and parameters (arrays are for the plot)."""
        return {**self.protocol_dict(), "name": self.name, "columns": list(self.columns),
                "rows": [list(r) for r in self.rows], "params": dict(self.params),
                "completed": self.completed, "total": self.total}


def _require_optimal(res):
    """A solve inside a figure row: Ctrl-C caught by the backend becomes KeyboardInterrupt again
    (the row is discarded, never filled with a non-optimal answer)."""
    if res.status is Termination.INTERRUPTED:
        raise KeyboardInterrupt
    return res.raise_for_status()


def _progress(it, total, desc, progress):
    if not progress:
        return it
    from tqdm import tqdm

    return tqdm(it, total=total, desc=desc, leave=False)


def _map_rows(fn, items, desc, progress, client, deadline=None):
    """``[fn(x) for x in items]``: serially, or on Dask when ``client`` is given (same answers).

    Returns ``(results, status, message)``; ``results[k]`` is ``None`` for rows not computed
    when a ``deadline`` (checked between rows; the first row always runs) expires or Ctrl-C
    arrives.  A row that fails (after Dask's retries) re-raises its exception.
    """
    items = list(items)
    out = [None] * len(items)
    status, message = Termination.OPTIMAL, ""
    if client is None:
        try:
            for k, x in enumerate(_progress(items, len(items), desc, progress)):
                if k > 0 and deadline is not None and deadline.expired():
                    status, message = Termination.TIME_LIMIT, deadline.message()
                    break
                out[k] = fn(x)
        except KeyboardInterrupt:
            status, message = Termination.INTERRUPTED, "interrupted by the user"
        return out, status, message
    return _map_rows_dask(fn, items, desc, progress, client, deadline)


def _map_rows_dask(fn, items, desc, progress, client, deadline):
    distributed = _dask()
    out = [None] * len(items)
    status, message = Termination.OPTIMAL, ""
    tag = uuid.uuid4().hex[:8]
    futures = {client.submit(fn, x, key=f"dm_opt-{desc.replace(' ', '')}-{tag}-{k}", pure=False,
                             retries=DEFAULT_RETRIES): k for k, x in enumerate(items)}
    bar = _progress(None, len(items), desc, progress) if progress else None
    done = 0
    try:
        left = None if deadline is None else deadline.remaining()
        left = None if left is None else max(left, 0.0)
        try:
            for fut in distributed.as_completed(list(futures), timeout=left):
                out[futures[fut]] = fut.result()          # a row that still failed after retries raises
                done += 1
                if bar is not None:
                    bar.update(1)
        except TimeoutError:
            status, message = Termination.TIME_LIMIT, deadline.message()
            if done == 0:                                 # the first row always runs
                fut = next(iter(distributed.as_completed(list(futures))))
                out[futures[fut]] = fut.result()
    except KeyboardInterrupt:
        status, message = Termination.INTERRUPTED, "interrupted by the user"
    finally:
        release(client, futures, bar)
    return out, status, message


def _limits(time_limit):
    return Deadline.of(time_limit)


def _finish(data: FigureData, results: list, status, message: str, unit: str) -> FigureData:
    data.status = Termination(status)
    data.completed = sum(r is not None for r in results)
    data.total = len(results)
    if data.partial:
        data.message = f"{message}: {data.completed} of {data.total} {unit} computed"
    return data


def example1_lower_price(rho: float) -> float:
    """``(2−ρ²)²/(2(4−ρ²))``: Example 1's equilibrium price (used only for marking the plot)."""
    return (2 - rho ** 2) ** 2 / (2 * (4 - rho ** 2))


# ------------------------------------------------------------------ Figure 1
def figure1_data(rho: float = 0.8, grid: int = 121, pmax: float = 0.8, progress: bool = False,
                 client=None, time_limit: float | None = None) -> FigureData:
    """User equilibria on a ``grid × grid`` price grid over ``[0, pmax]²`` (Example 1, ``v = 1``).

    Each grid point's label is the set of user equilibria, e.g. ``"00|11"``
    (profile bits ``a1 a2``).  Rows of the grid run on Dask when ``client`` is given.
    ``time_limit`` / Ctrl-C: rows ``p1`` not computed have label ``None`` (module docstring).
    """
    if not (0 <= abs(rho) < 1):
        raise ProblemError(f"rho must lie in (-1, 1), got {rho}")
    if grid < 2 or pmax <= 0:
        raise ProblemError("grid must be >= 2 and pmax > 0")
    deadline = _limits(time_limit)
    ps = np.linspace(0.0, pmax, grid)
    row_labels, status, message = _map_rows(functools.partial(_figure1_row, rho, ps), range(grid), "figure 1",
                                            progress, client, deadline)
    labels = np.full((grid, grid), None, dtype=object)
    rows = []
    for i, labs in enumerate(row_labels):
        if labs is None:
            continue
        for j, lab in enumerate(labs):
            labels[i, j] = lab
            rows.append((ps[i], ps[j], lab))
    return _finish(FigureData("fig1", ("p1", "p2", "equilibria"), rows,
                              {"p": ps, "labels": labels}, {"rho": rho}), row_labels, status, message, "rows p1")


def _figure1_row(rho: float, ps: np.ndarray, i: int) -> list[str]:
    """Labels of the user-equilibrium sets at prices ``(ps[i], p2)`` for every ``p2`` in ``ps``."""
    market = GaussianMarket([[1.0, rho], [rho, 1.0]], [1.0, 1.0])
    out = []
    for p2 in ps:
        eq = market.user_equilibria([ps[i], p2], all=True).all
        out.append("|".join(sorted("".join(str(int(x)) for x in a) for a in eq)))
    return out


# ------------------------------------------------------------------ Figure 2
def figure2_data(rho: float = 0.8, vmax: float = 3.0, points: int = 301, progress: bool = False,
                 client=None, time_limit: float | None = None) -> FigureData:
    """Equilibrium and first-best surplus for ``v`` on ``[0, vmax]`` (two users, ``Σ12 = ρ``).

    ``time_limit`` / Ctrl-C: points not computed are NaN in the arrays (module docstring).
    """
    if not (0 < abs(rho) < 1):
        raise ProblemError(f"rho must lie in (-1, 1) and be nonzero, got {rho}")
    deadline = _limits(time_limit)
    vs = np.linspace(0.0, vmax, points)
    results, status, message = _map_rows(functools.partial(_figure2_point, rho), vs, "figure 2", progress,
                                         client, deadline)
    rows = [r for r in results if r is not None]
    eq = np.array([np.nan if r is None else r[1] for r in results])
    fb = np.array([np.nan if r is None else r[2] for r in results])
    return _finish(FigureData("fig2", ("v", "equilibrium_surplus", "first_best_surplus", "equilibrium_profile",
                                       "first_best_profile"), rows,
                              {"v": vs, "equilibrium": eq, "first_best": fb}, {"rho": rho}),
                   results, status, message, "points v")


def _figure2_point(rho: float, v: float) -> tuple:
    m = GaussianMarket([[1.0, rho], [rho, 1.0]], [v, v])
    re = _require_optimal(api.solve(m, "equilibrium", method="enumerate"))
    rf = _require_optimal(api.solve(m, "first_best", method="enumerate"))
    return (v, re.surplus, rf.surplus, "".join(map(str, re.profile)), "".join(map(str, rf.profile)))


def equilibrium_surplus_two_users(rho: float, v: float, tol: float | None = None) -> float:
    """Equilibrium surplus of §3.4's two-user market at ``v`` (one :func:`dm_opt.solve` call).

    ``tol`` is the solver's tie tolerance (default ``1e-9 ×`` scale; near the
    upper threshold the platform is indifferent, and ties go to the smallest
    profile, so pass ``tol=0`` to locate the threshold to machine precision).
    """
    return _require_optimal(api.solve(GaussianMarket([[1.0, rho], [rho, 1.0]], [v, v]), "equilibrium",
                                  method="enumerate", tol=tol)).surplus


# ------------------------------------------------------------------ Figure 3
def example2_market(rho: float, v_h: float = 2.0, v_l: float = 0.9, size: int = 10,
                     within: float = 1 / 20):
    """AMMO Example 2 as a :class:`CommunityMarket` (community 0 low-value, community 1 high-value)."""
    return CommunityMarket([size, size], 1.0, within, rho, [v_l] * size + [v_h] * size,
                           name="ammo-example2", source="AMMO Example 2 (Figure 3)")


def _example2_surplus(market, vhs, v_l=0.9, size=10):
    rows = np.array([[v_l] * size + [x] * size for x in np.atleast_1d(vhs)])
    return sweep_values(market, rows, "equilibrium")


def figure3_data(rho_points: int = 100, vh_points: int = 100, vh_max: float = 10.0,
                 rho_max: float | None = None, band_points: int = 60, bisect_tol: float = 1e-6,
                 progress: bool = False, client=None, time_limit: float | None = None) -> FigureData:
    """Equilibrium surplus on a ``(ρ, v_h)`` grid for Example 2 and the zero-surplus curve.

    ``ρ`` runs over ``(0, rho_max]`` (default just below the PD limit 0.145),
    ``v_h`` over ``(1, vh_max]`` (``vh_points`` uniform points plus
    ``band_points`` extra points in ``(1, 1.5]``, where the exact solution has a
    thin band — see below).

    The **zero-surplus curve** ``v_h*(ρ)`` is the lower edge of the region the
    paper shades: the smallest ``v_h`` above which every grid value up to
    ``vh_max`` is negative, refined by bisection with the solver to
    ``bisect_tol`` (``nan`` where the top grid value is not negative).

    **All-share band** (found by the exact solver, not described in the paper):
    for ``v_h`` just above 1 (roughly ``1.1–1.2`` here) the platform buys from
    all 20 users — the §3.4 mechanism: the high-value users' correlated data
    depress each other's prices — and surplus is negative there too, before the
    platform switches to buying only from community 0 (surplus jumps back up).
    The paper's remark that surplus is positive "when ``v_h`` is very close to
    1" holds below the band.  Verified against enumeration on the dense ``Σ``
    (``tests/gaussian/test_figures.py``).  The ``ρ`` rows run on Dask when ``client`` is
    given (identical answers).  Rows of kind ``band`` in the CSV mark, per
    ``ρ``, the grid points below the curve with negative surplus.

    ``time_limit`` / Ctrl-C: rows ``ρ`` not computed are NaN in ``surplus`` and
    ``curve`` and absent from the CSV rows (module docstring).
    """
    if rho_max is None:
        rho_max = EXAMPLE2_RHO_MAX * (1 - 1e-6)
    if not (0 < rho_max < EXAMPLE2_RHO_MAX):
        raise ProblemError(f"rho_max must lie in (0, {EXAMPLE2_RHO_MAX}) (Σ must be positive definite)")
    if vh_max <= 1:
        raise ProblemError("vh_max must exceed 1 (high-value users have v_h > 1)")
    rhos = np.linspace(rho_max / rho_points, rho_max, rho_points)
    vhs = np.linspace(1.0 + (vh_max - 1.0) / vh_points, vh_max, vh_points)
    if band_points:
        vhs = np.union1d(vhs, np.linspace(1.0 + 0.5 / band_points, min(1.5, vh_max), band_points))
    deadline = _limits(time_limit)
    S = np.full((rho_points, vhs.size), np.nan)
    curve = np.full(rho_points, np.nan)
    rows = []
    results, status, message = _map_rows(functools.partial(_figure3_row, vhs, bisect_tol), rhos, "figure 3",
                                         progress, client, deadline)
    for i, res in enumerate(results):
        if res is None:
            continue
        surplus, counts, edge = res
        S[i] = surplus
        for j in range(vhs.size):
            rows.append(("grid", rhos[i], vhs[j], S[i, j], int(counts[j, 0]), int(counts[j, 1])))
        if np.isfinite(edge):
            curve[i] = edge
            rows.append(("curve", rhos[i], curve[i], 0.0, -1, -1))
    for i in range(rho_points):
        if results[i] is None:
            continue
        below = vhs < (curve[i] if np.isfinite(curve[i]) else np.inf)
        for j in np.flatnonzero(below & (S[i] < 0)):
            rows.append(("band", rhos[i], vhs[j], S[i, j], -1, -1))
    return _finish(FigureData("fig3", ("kind", "rho", "v_h", "equilibrium_surplus", "sharers_low", "sharers_high"),
                              rows, {"rho": rhos, "v_h": vhs, "surplus": S, "curve": curve},
                              {"v_l": 0.9, "size": 10, "within": 1 / 20}), results, status, message, "rows rho")


def _figure3_row(vhs: np.ndarray, bisect_tol: float, rho: float):
    """Surplus and sharer counts along ``vhs`` at correlation ``rho``, and the zero-surplus
    edge (bisection with the solver; ``nan`` when the top of the grid is not negative)."""
    market = example2_market(rho)
    out = _example2_surplus(market, vhs)
    surplus = out["surplus"]
    if surplus[-1] >= 0:
        return surplus, out["counts"], float("nan")
    nonneg = np.flatnonzero(surplus >= 0)
    top = nonneg[-1] if nonneg.size else -1          # last nonnegative point below the negative run
    lo = vhs[top] if top >= 0 else 1.0
    hi = vhs[top + 1]
    while hi - lo > bisect_tol:
        mid = 0.5 * (lo + hi)
        if _example2_surplus(market, mid)["surplus"][0] < 0:
            hi = mid
        else:
            lo = mid
    return surplus, out["counts"], 0.5 * (lo + hi)


# ------------------------------------------------------------------ output
def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise BackendUnavailable("figures need matplotlib: pip install 'dm-opt[plot]' "
                                 "(or pip install matplotlib)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot(data: FigureData, out: str) -> None:
    """Draw ``data`` to the PNG file ``out`` (matplotlib, Agg backend)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 5.0), dpi=120)
    if data.name == "fig1":
        from matplotlib.colors import ListedColormap
        from matplotlib.patches import Patch

        rho = data.params["rho"]
        names = ["00", "10", "01", "11", "00|11"]
        colors = ["#f0f0f0", "#9ecae1", "#fdae6b", "#74c476", "#9e6ac8"]
        # any other set arises only on the grid lines p_i = thresholds, where a user is indifferent
        lab = data.arrays["labels"]
        code = np.vectorize(lambda s: np.nan if s is None else names.index(s) if s in names else len(names),
                            otypes=[float])(lab)
        p = data.arrays["p"]
        cmap = ListedColormap(colors + ["#636363"]).with_extremes(bad=_MISSING_COLOR)
        ax.imshow(np.ma.masked_invalid(code.T), origin="lower", extent=(p[0], p[-1], p[0], p[-1]), cmap=cmap,
                  vmin=-0.5, vmax=len(names) + 0.5, interpolation="nearest", aspect="equal")
        lo = example1_lower_price(rho)
        for x in (lo, 0.5):
            ax.axvline(x, color="k", lw=0.6, ls=":")
            ax.axhline(x, color="k", lw=0.6, ls=":")
        ax.set_xlabel("$p_1$")
        ax.set_ylabel("$p_2$")
        ax.set_title(f"Figure 1: user equilibria, Example 1 ($\\rho$ = {rho:g}, $v_1 = v_2 = 1$)")
        present = set(lab.ravel())
        ax.legend(handles=[Patch(color=c, label=("a = " + n.replace("|", " and "))) for n, c in
                           zip(names, colors, strict=True) if n in present]
                  + ([Patch(color="#636363", label="indifference (several sets)")]
                     if present - set(names) - {None} else [])
                  + ([Patch(color=_MISSING_COLOR, label="not computed (partial)")] if None in present else []),
                  loc="upper left", fontsize=8)
    elif data.name == "fig2":
        rho = data.params["rho"]
        v = data.arrays["v"]
        ax.plot(v, data.arrays["first_best"], label="first-best surplus", lw=2, color="#2171b5")
        ax.plot(v, data.arrays["equilibrium"], label="equilibrium surplus", lw=2, color="#cb181d", ls="--")
        missing = np.isnan(data.arrays["equilibrium"])
        if missing.any():
            ax.fill_between(v, 0, 1, where=missing, step="mid", transform=ax.get_xaxis_transform(),
                            color=_MISSING_COLOR, label="not computed (partial)")
            ax.set_xlim(v[0], v[-1])
        ax.axhline(0, color="k", lw=0.6)
        t = 4 / (2 - rho ** 2) ** 2
        for x, name in ((1.0, "1"), (t, "$4/(2-\\rho^2)^2$")):
            ax.axvline(x, color="grey", lw=0.8, ls=":")
            ax.annotate(name, (x, ax.get_ylim()[1]), textcoords="offset points", xytext=(3, -12), fontsize=9)
        ax.set_xlabel("value of privacy $v$")
        ax.set_ylabel("social surplus")
        ax.set_title(f"Figure 2: two users, $\\Sigma_{{12}}$ = {rho:g}")
        ax.legend(fontsize=9)
    elif data.name == "fig3":
        r, vh, S, curve = data.arrays["rho"], data.arrays["v_h"], data.arrays["surplus"], data.arrays["curve"]
        from matplotlib.colors import ListedColormap
        from matplotlib.patches import Patch

        shade = np.where(np.isnan(S), np.nan, (S < 0).astype(float))
        cmap = ListedColormap(["white", "#bdbdbd"]).with_extremes(bad=_MISSING_COLOR)
        ax.pcolormesh(r, vh, np.ma.masked_invalid(shade.T), cmap=cmap, vmin=0, vmax=1, shading="nearest")
        ok = np.isfinite(curve)
        ax.plot(r[ok], curve[ok], color="k", lw=2, label="zero equilibrium surplus")
        ax.plot([], [], " ", label="(thin band near $v_h$ = 1.1: all 20 share)")
        ax.legend(handles=ax.get_legend_handles_labels()[0] + [Patch(color="#bdbdbd",
                  label="negative equilibrium surplus")]
                  + ([Patch(color=_MISSING_COLOR, label="not computed (partial)")] if np.isnan(S).any() else []),
                  fontsize=8, loc="upper right")
        ax.set_xlim(0, r[-1])
        ax.set_ylim(1, vh[-1])
        ax.set_xlabel("cross-community correlation $\\rho$")
        ax.set_ylabel("$v_h$")
        ax.set_title("Figure 3: negative equilibrium surplus (shaded), Example 2")
    else:  # pragma: no cover
        raise ProblemError(f"unknown figure {data.name}")
    if data.partial:
        ax.set_title(ax.get_title() + f"\nPARTIAL ({data.status}): {data.completed} of {data.total} computed",
                     color="#cb181d")
        ax.text(0.5, 0.5, "PARTIAL", transform=ax.transAxes, ha="center", va="center", fontsize=48,
                color="#cb181d", alpha=0.25, rotation=30)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def write_csv(data: FigureData, path: str) -> None:
    """Write ``data.rows``; a partial figure gets a first line ``# PARTIAL (status): ...`` (a comment)."""
    with open(path, "w", newline="") as fh:
        if data.partial:
            fh.write(f"# PARTIAL ({data.status}): {data.message}; missing rows are not listed\n")
        w = csv.writer(fh)
        w.writerow(data.columns)
        for row in data.rows:
            w.writerow([f"{x:.12g}" if isinstance(x, (float, np.floating)) else x for x in row])


def make_figure(name: str, out: str, csv_path: str | None = None, *, force: bool = False,
                progress: bool = False, time_limit: float | None = None, **params) -> FigureData:
    """Compute figure ``name`` (``fig1``, ``fig2``, ``fig3``) and write the PNG (and CSV).

    Every output is checked *before* computing: refuses to overwrite existing files unless
    ``force`` (raises ``FileExistsError``); a missing or read-only directory, a directory as
    target, or ``out`` and ``csv_path`` being the same file raise :class:`ProblemError`.
    ``time_limit`` (seconds) or Ctrl-C: the rows completed are written, labelled partial,
    and the returned data has status ``time_limit``/``interrupted`` (module docstring);
    a Ctrl-C before any row completed writes nothing and re-raises ``KeyboardInterrupt``.
    Ctrl-C (or SIGTERM) while the files are being written is held until they are complete.
    """
    if name not in FIGURES:
        raise ProblemError(f"unknown figure '{name}'; choose one of {', '.join(FIGURES)}")
    check_distinct([("out", out), ("csv_path", csv_path)])
    for option, path in (("out", out), ("csv_path", csv_path)):
        if path:
            check_output_file(path, option, force)
    _pyplot()  # fail fast (before computing) when matplotlib is missing
    fn = {"fig1": figure1_data, "fig2": figure2_data, "fig3": figure3_data}[name]
    data = fn(progress=progress, time_limit=time_limit, **params)
    if data.completed == 0 and data.partial:
        no_partial_answer(data.status, f"{name}: {data.message}; nothing written")
    with deferred_signals():
        plot(data, out)
        if csv_path:
            write_csv(data, csv_path)
    return data
