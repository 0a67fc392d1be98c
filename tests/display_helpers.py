"""Shared by the display tests and their Xvfb driver: a recorder of ``Pipeline.control`` calls,
and stand-ins for the two interfaces other branches deliver (CONTRACTS.md) while this branch
still has the old ones:

- ``Pipeline.control(name, *args)`` (engine branch): when missing, ``pause`` and ``marker`` go
  through the old queued calls and the other names are only recorded;
- ``RingBuffer.read_last(n, out=None, out_ts=None) -> (data, ts)`` (reliability branch): when
  missing, a subclass copies the old read into the reader's arrays.

Where the real interfaces exist (after the merge) they are used as they are and only recorded.
"""

from __future__ import annotations

import inspect
import threading

import numpy as np


class ControlLog:
    """Every ``Pipeline.control`` call of this process, in order: ``[(name, args), ...]``."""

    def __init__(self):
        self.calls: list = []
        self.lock = threading.Lock()

    def add(self, name, args):
        with self.lock:
            self.calls.append((name, tuple(args)))

    def names(self):
        with self.lock:
            return [n for n, _ in self.calls]

    def find(self, name):
        with self.lock:
            return [a for n, a in self.calls if n == name]

    def clear(self):
        with self.lock:
            self.calls.clear()


def install(log: ControlLog, setattr_=setattr):
    """Record ``Pipeline.control`` into ``log`` (and stand in where the interfaces are missing).
    ``setattr_`` is ``monkeypatch.setattr`` in tests (undone afterwards), plain setattr in the driver."""
    import neurofeed.pipeline as pl
    from neurofeed.buffer import RingBuffer

    real = getattr(pl.Pipeline, "control", None)

    def control(self, name, *args):
        log.add(name, args)
        if real is not None:
            return real(self, name, *args)
        if name == "pause":
            self.call(self.engine.set_paused, *args)
        elif name == "marker":
            self.call(self.engine.marker, *args)

    setattr_(pl.Pipeline, "control", control)
    if "out_ts" not in inspect.signature(RingBuffer.read_last).parameters:
        class NewApiRing(RingBuffer):
            def read_last(self, n, out=None, out_ts=None):
                x = np.array(super().read_last(n))
                m = x.shape[1]
                out = np.empty((self.n_channels, m)) if out is None else out
                out_ts = np.empty(m) if out_ts is None else out_ts
                out[:, :m] = x
                out_ts[:m] = np.nan  # no timestamps in the old ring
                return out[:, :m], out_ts[:m]

        setattr_(pl, "RingBuffer", NewApiRing)
