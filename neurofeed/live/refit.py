"""A refit computed off the real-time path (the baseline's end, a change of designed delay),
switched to between two chunks; and the estimator's reading of the baseline it hands the engine."""

from __future__ import annotations

import threading

import numpy as np


class RefitJob:
    """A refit computed off the real-time path: ``fit()`` (on copies; in a worker thread or at
    once) returns the result, ``install(result, since)`` switches the live objects to it between
    two chunks (``since``: the conditioned chunks processed meanwhile). The fit and install
    steps of the baseline hand-off (docs/ARCHITECTURE.md, "Contracts").

    Attributes
    ----------
    kind : str
        What is refitted (``"baseline"``, ``"set_delay"``), journaled with the switch.
    refusable : str or None
        The control that asked for it: a :class:`NeurofeedError` from ``fit`` is journaled
        as that control's refusal where the job is installed, instead of raised.
    done : threading.Event
        Set when ``fit`` has returned or raised.
    result, error
        Its return value, or the exception it raised (re-raised where it is installed).
    """

    def __init__(self, kind: str, fit, install, refusable: str | None = None):
        self.kind, self._fit, self.install, self.refusable = kind, fit, install, refusable
        self.result, self.error = None, None
        self.done = threading.Event()
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        try:
            self.result = self._fit()
        except BaseException as err:  # noqa: BLE001 - handed to the thread that installs the job
            self.error = err
        finally:
            self.done.set()

    def start(self) -> None:
        """Run ``fit`` in a daemon worker thread."""
        self._thread = threading.Thread(target=self.run, name=f"neurofeed-refit-{self.kind}", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        """Block until ``fit`` is done."""
        self.done.wait()


def baseline_powers(estimator, x: np.ndarray, sizes, memory_samples: int):
    """``estimator`` (from its start) over the referenced baseline ``x`` in chunks of ``sizes``:
    (the power per chunk, whether each chunk falls in its start-up of ``memory_samples``)."""
    powers, settling, pos = [], [], 0
    for n in sizes:
        powers.append(estimator.process_inplace(np.ascontiguousarray(x[:, pos:pos + n])).copy())
        settling.append(pos < memory_samples)
        pos += n
    return powers, settling
