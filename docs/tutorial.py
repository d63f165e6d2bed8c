"""dm_opt tutorial: from AMMO Example 1 to a million-user market, then GLP and RJ.

Run it as a script (about 10-20 s, most of it the million-user market)::

    python docs/tutorial.py                 # figures go to a fresh temporary directory
    python docs/tutorial.py --out figs/     # or DM_OPT_TUTORIAL_OUT=figs/ python docs/tutorial.py

or cell by cell in an editor that understands ``# %%`` cells (VS Code, Spyder, Jupytext).
docs/tutorial.md explains each step; tests/core/test_tutorial.py runs this file and checks the
numbers it prints against values computed independently from the papers' formulas.

Only the public API is used: ``dm_opt.load``, ``dm_opt.solve``, ``dm_opt.save``, the result
attributes (``status``, ``objective``, ``bound``, ``profile``, ``prices``, …) and, when
matplotlib is installed, ``dm_opt.gaussian.figures``.  Nothing is written inside the repository.
"""

# %% Setup: where figures and saved files go (never into the repository)
from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
import time

import numpy as np

import dm_opt

parser = argparse.ArgumentParser(description="dm_opt tutorial (docs/tutorial.md)")
parser.add_argument("--out", default=os.environ.get("DM_OPT_TUTORIAL_OUT"),
                    help="directory for figures and saved models (default: $DM_OPT_TUTORIAL_OUT, "
                         "else a new temporary directory)")
args, _ = parser.parse_known_args()        # (parse_known_args: cells also run inside Jupyter)
OUT = args.out or tempfile.mkdtemp(prefix="dm_opt_tutorial_")
os.makedirs(OUT, exist_ok=True)
print(f"output directory: {OUT}")

# %% [1] AMMO Example 1: two users, correlated data, one platform
# Acemoglu, Makhdoumi, Malekian & Ozdaglar, "Too Much Data" (AMMO), Example 1: two users whose
# types are correlated (rho = 0.5), both valuing privacy at v = 1.  A shipped model is loaded by
# name (`dm-opt models` lists them); a path to your own TOML file works the same way.
m = dm_opt.load("ammo/example1")
print(m.source)

# The platform buys data at prices it chooses (Stackelberg); users then decide whether to share.
# `dm_opt.solve` picks an exact method ("auto") and returns a result whose `status` says whether
# the answer is proven optimal; `objective` is the platform's profit, re-evaluated at `profile`.
eq = dm_opt.solve(m, "equilibrium")
print(f"example1 equilibrium: status = {eq.status}, profile = {eq.profile.tolist()}")
print(f"example1 equilibrium prices = {eq.prices.tolist()!r}")
print(f"example1 equilibrium leakage = {eq.leakage.tolist()!r}")
print(f"example1 equilibrium profit = {eq.objective!r}, surplus = {eq.surplus!r}")

# First best: what a planner maximising social surplus would choose.  With v = 1 the data are
# worth to the platform exactly what the users lose, so sharing creates no surplus here.
fb = dm_opt.solve(m, "first_best")
print(f"example1 first best: profile = {fb.profile.tolist()}, surplus = {fb.surplus!r}")

# Every result speaks the same protocol: to_dict() is strict JSON, raise_for_status() raises
# unless the status is optimal.
print("example1 result fields:", ", ".join(list(eq.raise_for_status().to_dict())[:6]), "…")

# A market can be written back as an instance file (never overwriting one unless force=True).
saved = dm_opt.save(m, os.path.join(OUT, "example1.toml"), force=True)
print(f"example1 saved to {saved}; reloads equal: "
      f"{np.array_equal(dm_opt.load(saved).cov, m.cov)}")

# %% [2] AMMO Figure 1 (optional: needs matplotlib)
# The user equilibria over the price square for Example 1; the figures module computes the
# data with the solvers and draws them.  A coarse grid keeps this fast.
if importlib.util.find_spec("matplotlib") is not None:
    from dm_opt.gaussian import figures

    png = os.path.join(OUT, "figure1.png")
    data = figures.make_figure("fig1", png, rho=0.5, grid=31, force=True)
    print(f"figure 1 written to {png} ({data.status})")
else:
    print("figure 1 skipped: pip install matplotlib to draw it")

# %% [3] Communities: AMMO Example 2, then a million users
# When users come in K exchangeable communities, a CommunityMarket never forms the n x n
# covariance: the community solver searches over sharer counts per community with K x K algebra.
ex2 = dm_opt.load("ammo/example2_community")
r2 = dm_opt.solve(ex2, "equilibrium")          # auto -> method "community"
print(f"example2: n = {ex2.n}, sharers per community = {list(r2.extra['counts'])}, "
      f"surplus = {r2.surplus!r}")

# The same model at internet scale: 10^6 users in 5 communities (values drawn per community,
# seeded).  Measured CPU seconds are printed for the reader; expect a few seconds.
big = dm_opt.load("ammo/community_n1e6_k5")
t0 = time.process_time()
rb = dm_opt.solve(big, "equilibrium", method="community")
cpu = time.process_time() - t0
print(f"community n = {big.n}: status = {rb.status}, counts = {list(rb.extra['counts'])}")
print(f"community equilibrium profit = {rb.objective!r}, surplus = {rb.surplus!r}, gap = {rb.gap!r}")
print(f"(solved in {cpu:.1f} CPU seconds)")

# %% [4] GLP: a platform designing information about its database (two-type example)
# Galperti, Liu & Perego, "Competitive Markets for Personal Data" (slides, GLP): consumers of
# two types (willingness to pay 1 and 2) sell their records to a platform, which recommends
# prices to a merchant.  Here the platform cares about consumer surplus only (gamma_pi = 0).
g = dm_opt.load("glp/two_type")
print(g.describe())

# P_q at the whole population: V(q) is the platform's value of the database q.
pl = dm_opt.solve(g, "platform")
print(f"glp platform value V(prior) = {pl.objective!r} ({pl.status}, method {pl.method})")

# Constrained efficiency: the best database and mechanism a planner can choose.
ef = dm_opt.solve(g, "efficiency")
print(f"glp constrained efficiency W = {ef.objective!r} at q = {ef.q.tolist()!r}")

# Every competitive equilibrium (families of prices and supplies), and the data-union remedy.
eqs = dm_opt.solve(g, "equilibrium")
print(f"glp equilibria: best welfare = {eqs.objective!r}, all efficient = {eqs.all_efficient}")
un = dm_opt.solve(g, "union")
print(f"glp data union value = {un.objective!r}")

# %% [5] RJ Example 3.5: a data-sharing network without a stable outcome
# Rasouli & Jordan, "Data Sharing Markets" (RJ): three agents, each valuing the data of the
# others; utilities encode the paper's strict rankings.
rj = dm_opt.load("rj/example_3_5")
w = dm_opt.solve(rj, "welfare")                  # the welfare-maximising directed sharing graph
print(f"rj welfare = {w.objective!r} ({w.status})")
print("rj share matrix (row i sends to column j):", np.asarray(w.share).tolist())

chk = dm_opt.solve(rj, "check")                  # RJ's conditions for ordered match (Prop 3.1)
holds = {c.property: c.holds for c in chk.checks}
print(f"rj top agent property holds: {holds['top_agent']}")

st = dm_opt.solve(rj, "stability")               # every bilateral graph, checked against Def 3.2
print(f"rj stable outcomes = {len(st.graphs)} of {st.graphs_total} graphs")

print("tutorial finished")
