"""What the emulated devices share: one daemon thread that plays the device, started and stopped
the same way (``start``/``stop``, or ``with``)."""

from __future__ import annotations

import threading


class ThreadedEmulator:
    """An emulated device played by one daemon thread.

    A subclass sets :attr:`thread_name`, implements :meth:`_run` (the device: loops until
    ``self._stop`` is set) and :meth:`_close` (what the stopped device releases: its pty, its outlet),
    and calls :meth:`_init_thread` in its ``__init__``.
    """

    #: the thread's name (seen in a stack dump)
    thread_name = "emulator"

    def _init_thread(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:  # pragma: no cover - each device plays itself
        raise NotImplementedError

    def _close(self) -> None:
        """Release what the device holds, once its thread has ended."""

    def start(self):
        """Start the device in a daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread, then release the device (:meth:`_close`); safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
