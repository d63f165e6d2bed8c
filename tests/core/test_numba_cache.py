"""A corrupted numba cache is repaired, not fatal: truncated ``.nbi``/``.nbc`` files of
dm_opt kernels are deleted, the kernel is recompiled and cached again, with one warning.

Everything runs in subprocesses with ``NUMBA_CACHE_DIR`` in a temporary directory: the shared
tree's caches are never touched."""

import glob
import json
import os
import pickle
import shutil
import subprocess
import sys
import textwrap

import pytest

from dm_opt.core.numba_cache import is_intact

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

KERNEL = textwrap.dedent("""
    from numba import njit


    @njit(cache=True)
    def f(x):
        return 2 * x + 1
""")

# imports the kernel file as each module name given (a dm_opt module, or not) and calls it
RUN = textwrap.dedent("""
    import importlib.util, sys
    import dm_opt                         # installs the cache guard (numba not imported yet)
    assert "numba" not in sys.modules
    path = sys.argv[1]
    for name in sys.argv[2:]:
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        try:
            print(name, mod.f(3), flush=True)
        except Exception as exc:
            print(name, "crash", type(exc).__name__, flush=True)
""")


def _start(tmp_path, cache, *names):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    return subprocess.Popen([sys.executable, str(tmp_path / "run.py"), str(tmp_path / "_probe.py"), *names],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait(proc):
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out.splitlines(), err


def _files(cache, ext):
    return glob.glob(os.path.join(str(cache), "**", f"*{ext}"), recursive=True)


def _truncate(paths, keep=7):
    for p in paths:
        with open(p, "rb") as fh:
            data = fh.read()
        with open(p, "wb") as fh:
            fh.write(data[:keep])


def test_is_intact_detects_truncation(tmp_path):
    good = tmp_path / "a.nbi"
    good.write_bytes(pickle.dumps("0.60.0") + pickle.dumps((1.0, {"k": "a.1.nbc"})))
    data = tmp_path / "a.1.nbc"
    data.write_bytes(pickle.dumps((b"x" * 1000, 3)))
    assert is_intact(str(good)) and is_intact(str(data))
    for path in (good, data):
        raw = path.read_bytes()
        for cut in (0, 1, len(raw) // 2, len(raw) - 1):
            path.write_bytes(raw[:cut])
            assert not is_intact(str(path)), (path.name, cut)
        path.write_bytes(raw)
    good.write_bytes(pickle.dumps("0.60.0"))            # index with the version pickle only
    assert not is_intact(str(good))


def test_truncated_cache_of_a_dm_opt_kernel_is_deleted_and_rebuilt(tmp_path):
    (tmp_path / "_probe.py").write_text(KERNEL)
    (tmp_path / "run.py").write_text(RUN)
    healthy = tmp_path / "healthy"
    rc, out, err = _wait(_start(tmp_path, healthy, "dm_opt._probe"))
    assert rc == 0 and out == ["dm_opt._probe 7"], err
    assert _files(healthy, ".nbi") and _files(healthy, ".nbc")

    procs = {}
    for which in (".nbi", ".nbc"):            # a truncated index; a truncated data file (concurrently)
        cache = tmp_path / which[1:]
        shutil.copytree(healthy, cache)
        _truncate(_files(cache, which))
        # first as a module outside dm_opt, left to numba: the same files make it fail (they are really
        # broken); then as a dm_opt module: repaired
        procs[which] = _start(tmp_path, cache, "_probe", "dm_opt._probe")
    for which, proc in procs.items():
        rc, out, err = _wait(proc)
        assert rc == 0 and out[0] in ("_probe crash UnpicklingError", "_probe crash EOFError"), (which, out, err)
        assert out[1] == "dm_opt._probe 7", (which, out, err)
        assert err.count("NumbaCacheWarning") == 1 and "recompiling" in err and "Traceback" not in err, err
        files = _files(tmp_path / which[1:], ".nb[ic]")
        assert files and all(is_intact(p) for p in files), which        # cached again, intact

    rc, out, err = _wait(_start(tmp_path, tmp_path / "nbi", "dm_opt._probe"))   # the new cache is used, silently
    assert rc == 0 and out == ["dm_opt._probe 7"] and "NumbaCacheWarning" not in err, err


@pytest.mark.slow   # compiles dm_opt's own kernels from scratch (tens of seconds)
def test_cli_solve_survives_truncated_kernel_cache(tmp_path):
    """The issue as reported: ``dm-opt solve`` with truncated caches of the compiled kernels exits 0 with
    one ``dm-opt: warning:`` line (in a private NUMBA_CACHE_DIR).  n = 16: above the NumPy walk of small
    enumerations (``SMALL_N``), so the enumeration and posterior kernels are compiled and cached."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    cmd = [sys.executable, "-c", "import sys; from dm_opt.cli import main; sys.exit(main())", "solve",
           os.path.join(ROOT, "models", "ammo", "wishart_n16_seed1.toml"), "--method", "enumerate", "--json"]
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert first.returncode == 0, first.stderr
    kernels = [p for p in _files(tmp_path / "cache", ".nb[ic]")
               if os.path.basename(p).startswith(("enumeration.", "posterior."))]
    assert kernels, _files(tmp_path / "cache", ".nb[ic]")
    _truncate(kernels)
    second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert second.returncode == 0 and "Traceback" not in second.stderr, second.stderr
    warn = [ln for ln in second.stderr.splitlines() if "warning" in ln]
    assert len(warn) == 1 and warn[0].startswith("dm-opt: warning: numba cache of dm_opt kernel "), second.stderr
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert (b["status"], b["profile"], b["objective"]) == (a["status"], a["profile"], a["objective"])
