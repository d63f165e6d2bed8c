"""Docs that run: every ```python block of README.md and docs/*.md, and every ``dm-opt``
line of their ```bash blocks, runs as written (from a scratch directory where ``models/``
is the shipped models folder, as in a checkout).

The blocks of one file run in order in one interpreter (later blocks may use names defined by
earlier ones, as a reader would).  A block preceded by ``<!-- docs-test: slow -->`` runs only
with ``-m slow``; ``<!-- docs-test: skip (reason) -->`` is never run (the reason is required:
e.g. a command that needs a running Dask scheduler).  ``pip install`` lines are not run.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"(?:<!--\s*docs-test:\s*(?P<mark>slow|skip[^>]*?)\s*-->\s*\n)?"
                   r"```(?P<lang>python|bash)\n(?P<body>.*?)```",
                   re.S)
TIMEOUT = 600


def blocks(path: Path):
    text = path.read_text(encoding="utf-8")
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start("body")) + 1
        mark = (m.group("mark") or "").strip()
        if mark.startswith("skip"):
            assert re.match(r"skip\s*\(.+\)", mark), f"{path.name}:{line}: a skip needs a reason: skip (why)"
        yield m.group("lang"), m.group("body"), line, mark


def _cases():
    for path in DOCS:
        found = list(blocks(path))
        for mark in ("", "slow"):
            chosen = [b for b in found if b[3] == mark]
            if not chosen:
                continue
            marks = [pytest.mark.slow] if mark == "slow" else []
            yield pytest.param(path, mark, id=f"{path.name}{'-slow' if mark else ''}", marks=marks)


@pytest.fixture
def scratch(tmp_path):
    (tmp_path / "models").symlink_to(ROOT / "dm_opt" / "models")
    return tmp_path


def script_of(path: Path, mark: str) -> str:
    """One script running the chosen blocks of ``path`` in order: python blocks as written, each
    ``dm-opt`` line of a bash block through :func:`dm_opt.cli.main` in the same interpreter
    (one start-up per file), asserting exit status 0."""
    parts = ["import shlex as _shlex, sys as _sys"]
    for lang, body, line, m in blocks(path):
        if m != mark:
            continue
        if lang == "python":
            parts.append(f"print('@@block {path.name}:{line}', flush=True)\n{body}")
            continue
        for k, raw in enumerate(body.splitlines()):
            argv = shlex.split(raw, comments=True)
            if not argv or argv[0] != "dm-opt":
                continue
            parts.append(f"print('@@block {path.name}:{line + k}', flush=True)\n"
                         f"from dm_opt.cli import main as _main\n"
                         f"_rc = _main({argv[1:]!r})\n"
                         f"assert _rc == 0, 'dm-opt {' '.join(argv[1:])} exited %s' % _rc")
    return "\n".join(parts)


@pytest.mark.parametrize("path, mark", list(_cases()))
def test_doc_blocks_run(path, mark, scratch):
    src = script_of(path, mark)
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", src], cwd=scratch, capture_output=True, text=True,
                       timeout=TIMEOUT, env=env)
    if r.returncode != 0:
        where = [ln for ln in r.stdout.splitlines() if ln.startswith("@@block")]
        pytest.fail(f"{where[-1] if where else path.name}: failed:\n{r.stderr[-3000:]}")
