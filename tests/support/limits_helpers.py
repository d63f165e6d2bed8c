"""Deterministic stand-ins for a time limit and Ctrl-C in tests of long computations."""

import dataclasses

import dm_opt
from dm_opt.core import limits
from dm_opt.core.result import Termination


class Budget:
    """Time limit and Ctrl-C counted in calls of ``dm_opt.gaussian.api.solve``.

    ``expire_after(k)``: a ``Deadline`` with a time limit expires once ``k`` solves have run.
    ``interrupt_at(k, caught)``: the ``k``-th solve raises KeyboardInterrupt (``caught=False``) or
    returns its answer with status ``interrupted`` (``caught=True``: what a backend does on Ctrl-C).
    """

    def __init__(self, monkeypatch):
        self.calls, self.expire_at, self.interrupt = 0, None, None
        real = dm_opt.gaussian.api.solve

        def solve(*args, **kw):
            self.calls += 1
            if self.interrupt is not None and self.calls == self.interrupt[0]:
                if not self.interrupt[1]:
                    raise KeyboardInterrupt
                return dataclasses.replace(real(*args, **kw), status=Termination.INTERRUPTED)
            return real(*args, **kw)

        def remaining(deadline):
            if deadline.time_limit is None:
                return None
            return 0.0 if self.expired() else 1e9

        monkeypatch.setattr(dm_opt.gaussian.api, "solve", solve)
        monkeypatch.setattr(limits.Deadline, "remaining", remaining)
        monkeypatch.setattr(limits.Deadline, "expired", lambda d: d.time_limit is not None and self.expired())

    def expired(self):
        return self.expire_at is not None and self.calls >= self.expire_at

    def expire_after(self, k):
        self.calls, self.expire_at, self.interrupt = 0, k, None
        return self

    def interrupt_at(self, k, caught=False):
        self.calls, self.expire_at, self.interrupt = 0, None, (k, caught)
        return self


class CtrlC:
    """A stand-in for ``real`` whose call number ``at`` raises KeyboardInterrupt: before
    running ``real`` (Ctrl-C while it runs) or, with ``after=True``, once it has returned
    (Ctrl-C arriving just after a compiled call).  ``calls`` counts the calls."""

    def __init__(self, real, at: int, *, after: bool = False):
        self.real, self.at, self.after, self.calls = real, at, after, 0

    def __call__(self, *args, **kw):
        self.calls += 1
        if self.calls == self.at and not self.after:
            raise KeyboardInterrupt
        out = self.real(*args, **kw)
        if self.calls == self.at:
            raise KeyboardInterrupt
        return out
