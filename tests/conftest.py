import math
import os

import pytest

# Shared helper modules live in the package tests.support (the project root is on the path
# through pytest's ``pythonpath`` setting in pyproject.toml).


# ------------------------------------------------------------------------------------------------
# Certificate invariants of every SolveResult.  SolveResult.__post_init__ is wrapped for
# the whole session (from pytest_configure, so results built in module-scoped fixtures or at
# collection are checked too), and every constructed result must satisfy:
#   status optimal  =>  finite objective, non-empty profile, finite bound, finite tie_tol >= 0,
#                       bound - objective <= tie_tol + slack;
#   always (objective and bound both finite)  =>  bound >= objective - slack;
# with slack = 1e-12 * max(|objective|, |bound|) (round-off only).  A violation raises
# AssertionError listing the result's fields.  A test that builds an invalid result on purpose can
# opt out with @pytest.mark.no_certificate_check; DM_OPT_NO_CERTIFICATE_CHECK=1 switches the check off
# for a whole run (to see whether a test catches a bug by its own assertions).
# ------------------------------------------------------------------------------------------------
CERTIFICATE_RTOL = 1e-12
_CERT_STATE = {"enabled": True, "original": None}


def certificate_violations(r) -> list:
    """Violated certificate invariants of a SolveResult (empty list: valid)."""
    bad = []
    status = str(getattr(r.status, "value", r.status))
    obj, bound, tie = float(r.objective), float(r.bound), float(r.tie_tol)
    finite = math.isfinite(obj) and math.isfinite(bound)
    slack = CERTIFICATE_RTOL * max(abs(obj), abs(bound)) if finite else 0.0
    if status == "optimal":
        if not math.isfinite(obj):
            bad.append("status optimal but the objective is not finite")
        if r.profile.size == 0:
            bad.append("status optimal but the profile is empty")
        if not math.isfinite(bound):
            bad.append("status optimal but the bound is not finite")
        if not (math.isfinite(tie) and tie >= 0):
            bad.append("status optimal but tie_tol is not a finite number >= 0")
        if finite and math.isfinite(tie) and not bound - obj <= tie + slack:
            bad.append(f"status optimal but bound - objective = {bound - obj!r} > tie_tol + slack = {tie + slack!r}")
    if finite and not bound >= obj - slack:
        bad.append(f"bound {bound!r} < objective {obj!r} (by {obj - bound!r} > slack {slack!r})")
    return bad


def _describe(r) -> str:
    fields = ("problem", "method", "status", "profile", "objective", "bound", "gap", "tie_tol", "nodes",
              "optima", "message", "extra")
    out = []
    for f in fields:
        x = getattr(r, f, None)
        if f == "profile":
            x = x.tolist()
        elif f == "optima" and x is not None:
            x = f"{len(x)} profiles"
        elif f == "status":
            x = str(x)
        out.append(f"{f}={x!r}")
    return ", ".join(out)


def _install_certificate_check():
    if os.environ.get("DM_OPT_NO_CERTIFICATE_CHECK"):
        return
    try:
        from dm_opt.gaussian.result import SolveResult
    except Exception:  # pragma: no cover - the package does not import: the tests will say why
        return
    if _CERT_STATE["original"] is not None:
        return
    original = SolveResult.__post_init__
    _CERT_STATE["original"] = original

    def __post_init__(self):
        original(self)
        if not _CERT_STATE["enabled"]:
            return
        bad = certificate_violations(self)
        if bad:
            raise AssertionError("SolveResult violates its certificate: " + "; ".join(bad)
                                 + "\n  fields: " + _describe(self))

    __post_init__.__wrapped__ = original
    SolveResult.__post_init__ = __post_init__


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "no_certificate_check: do not check SolveResult certificate invariants in this test")
    _install_certificate_check()


def pytest_unconfigure(config):
    original = _CERT_STATE["original"]
    if original is not None:
        from dm_opt.gaussian.result import SolveResult

        SolveResult.__post_init__ = original
        _CERT_STATE["original"] = None


@pytest.fixture(autouse=True)
def _solve_result_certificate_check(request):
    """Enable the SolveResult certificate check for every test (opt out: no_certificate_check)."""
    _install_certificate_check()     # in case dm_opt was not importable at configure time
    _CERT_STATE["enabled"] = request.node.get_closest_marker("no_certificate_check") is None
    yield
    _CERT_STATE["enabled"] = True
