"""Runs a source through a :class:`~neurofeed.live.processor.Processor` in an acquisition thread.

The acquisition thread reads the source and, right after each chunk arrives, runs the whole
processing step synchronously and publishes the resulting :class:`FeedbackState`. Nothing
waits for a timer; the GUI only reads ``Pipeline.latest``.
"""

from __future__ import annotations

import logging
import sys
import threading
import time

from ..core.buffer import RingBuffer
from ..core.errors import NeurofeedError
from ..core.state import FeedbackState
from ..protocol.engine import CONTROLS
from .history import StateHistory
from .latency_probe import LatencyProbe
from .memory import keep_memory_flat
from .processor import Processor

log = logging.getLogger(__name__)

SIGNAL_LOST_S = 0.5  # no samples for this long (s): the signal is lost (journaled; the engine holds)


class Pipeline:
    """Runs a source through a :class:`Processor` in an acquisition thread.

    Parameters
    ----------
    source : Source
    processor : Processor
    sinks : list
        Objects with ``on_chunk(chunk)``, ``on_state(state)`` and ``on_events(events)``
        (any may be absent), called in the acquisition thread: keep them short.
    buffer_s : float
        Seconds of raw data kept in the ring buffer for the display.
    marker_inlet : object, optional
        External marker stream for external-marker protocols: ``pull_stamped() -> [(label,
        lsl_timestamp)]`` (markers start blocks at the sample they were stamped at), or
        ``pull_onsets() -> [(onset_sample, label)]`` (a file's annotations), or ``pull() ->
        [label]`` (applied where polled). ``"end"`` ends the running block.
    busy_poll : bool
        Spin (yielding the GIL) instead of napping 0.5 ms between polls: a new sample is picked
        up within ~0.1 ms, at the price of one core.
    """

    def __init__(self, source, processor: Processor, sinks=(), buffer_s: float = 10.0, marker_inlet=None,
                 busy_poll: bool = False):
        self.source = source
        if busy_poll:
            source.poll_s = 0.0
        self.processor = processor
        # the baseline's refit never stalls acquisition from a real-time source (a board, a stream);
        # a source read as fast as it goes (a file, a simulation) has no real-time path to keep
        processor.refit_in_worker = bool(getattr(source, "realtime", True))
        self.engine = processor.engine
        self.sinks = list(sinks)
        self.ring = RingBuffer(len(source.ch_names), int(buffer_s * source.sfreq))
        self.latest: FeedbackState = FeedbackState(targets=tuple(processor.chain.targets))
        self.probe = LatencyProbe()
        self.history = StateHistory()
        self.marker_inlet = marker_inlet
        self.error: BaseException | None = None
        self.lost_events = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pending: list = []  # control calls from other threads, applied between chunks
        self._markers: list = []  # external block markers (onset_sample, label) not yet due
        self._lsl_offset_s = None  # pylsl.local_clock() - time.perf_counter(), for marker timestamps
        self._last_sample_s = None  # perf_counter time of the newest processed sample
        self.t0_ns = 0
        self.published = 0
        self.blinded = False  # a blinded trial session; views hide the live SI

    # controls, safe from any thread -------------------------------------------------------
    def control(self, name: str, *args) -> None:
        """Queue an operator control; it is applied in the acquisition thread before the next
        chunk and journaled at that sample. Safe from any thread.

        Names and arguments (docs/ARCHITECTURE.md, "Contracts"): ``pause`` (bool), ``pause_schedule`` (bool),
        ``marker`` (text), ``note`` (text), ``lock_threshold`` (bool), ``nudge_threshold``
        (delta_si: float), ``skip_block`` (), ``extend_block`` (seconds: float),
        ``mark_bad_channel`` (name: str, bad: bool = True), ``stimulus`` (id), ``set_delay``
        (seconds: the estimator's designed delay, see :meth:`Processor.set_delay`), ``rebaseline``
        () (see :meth:`Processor.rebaseline`).

        Raises
        ------
        NeurofeedError
            Unknown name or wrong number of arguments (at once, in the caller's thread).
        """
        if name not in CONTROLS:
            raise NeurofeedError(f"Unknown control {name!r}; expected one of {', '.join(CONTROLS)}.")
        lo, hi = CONTROLS[name]
        if not lo <= len(args) <= hi:
            raise NeurofeedError(f"Control {name!r} takes {lo}{'' if lo == hi else f'–{hi}'} argument(s), "
                                 f"got {len(args)}: {args!r}.")
        with self._lock:
            self._pending.append((name, args))

    def pause(self, paused: bool) -> None:
        """Shorthand for ``control("pause", paused)``."""
        self.control("pause", paused)

    def marker(self, text: str = "marker") -> None:
        """Shorthand for ``control("marker", text)``."""
        self.control("marker", text)

    # lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the source and the acquisition thread."""
        keep_memory_flat()  # the baseline refit's multi-MB temporaries go back to the OS, not stay in RSS
        # a thread waiting for the GIL (acquisition, behind the GUI's painting) asks
        # for it after this interval; 0.5 ms instead of CPython's 5 ms cut the emulated Cyton's sample
        # wait p99 from 118 to 20 ms with the display on (benchmarks/RESULTS.md, "Electrode to feedback") ---
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.0005))
        self.source.start()
        self.t0_ns = time.perf_counter_ns()
        self._thread = threading.Thread(target=self._run, name="neurofeed-acquisition", daemon=True)
        self._thread.start()

    def stop(self, why: str = "stopped by operator") -> None:
        """Stop acquisition, end the session and close the source (idempotent)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        if not self.engine.finished:
            self.processor.control("stop", why)
            self._dispatch_events()
        self.source.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the session to end by itself; True if it did."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def run(self) -> None:
        """Start, wait until the protocol or source ends (or Ctrl-C), then stop."""
        self.start()
        try:
            while self.running:
                self._thread.join(0.2)
        except KeyboardInterrupt:
            self.stop("interrupted (Ctrl-C)")
            return
        self.stop("session complete")

    def _dispatch_events(self) -> None:
        events = self.engine.drain_events()
        if events:
            for s in self.sinks:
                fn = getattr(s, "on_events", None)
                if fn:
                    fn(events)

    def _apply_pending(self) -> None:
        if self._pending:
            with self._lock:
                pending, self._pending = self._pending, []
            for name, args in pending:
                self.processor.control(name, *args)

    def _poll_markers(self) -> None:
        """External block markers: each is mapped to the sample it was stamped at (its LSL
        timestamp against the newest processed sample's acquisition time) and applied at the
        first chunk boundary at or after that sample."""
        inlet, eng = self.marker_inlet, self.engine
        if hasattr(inlet, "pull_onsets"):  # a file's annotations: onsets already in samples
            self._markers.extend(inlet.pull_onsets())
        elif hasattr(inlet, "pull_stamped"):
            for label, ts in inlet.pull_stamped():
                self._markers.append((self._onset_sample(ts), label))
        else:
            self._markers.extend((eng.n, m) for m in inlet.pull())
        self._markers.sort(key=lambda m: m[0])  # stable: markers stamped alike keep their order
        while self._markers and self._markers[0][0] <= eng.n:
            onset, label = self._markers.pop(0)
            self.processor.control("block_marker", int(onset), label)

    def _onset_sample(self, ts_lsl: float) -> int:
        """The sample index an LSL timestamp falls on (host LSL clock)."""
        eng = self.engine
        if self._last_sample_s is None:
            return eng.n
        if self._lsl_offset_s is None:
            import pylsl

            self._lsl_offset_s = pylsl.local_clock() - time.perf_counter()
        behind_s = self._last_sample_s + self._lsl_offset_s - ts_lsl  # > 0: stamped before the newest sample
        return max(0, eng.n - 1 - int(round(behind_s * eng.sfreq)))

    def _run(self) -> None:
        src, proc, eng = self.source, self.processor, self.engine
        chunk_sinks = [s.on_chunk for s in self.sinks if hasattr(s, "on_chunk")]
        state_sinks = [s.on_state for s in self.sinks if hasattr(s, "on_state") and not getattr(s, "publish_first", False)]
        # sinks that carry the participant's feedback (the LSL feedback outlet) get
        # each state right after publication, before the ring, the recorder and the history ---
        first_sinks = [s.on_state for s in self.sinks if hasattr(s, "on_state") and getattr(s, "publish_first", False)]
        last_data = time.perf_counter_ns()
        lost = False
        # the protocol's session limit in wall-clock time too: a real-time source whose signal is lost
        # delivers no samples to count, and the session must still end (and its recording close)
        limit_ns = eng.max_samples / eng.sfreq * 1e9 if eng.max_samples and getattr(src, "realtime", True) else None
        try:
            while not self._stop.is_set() and not eng.finished:
                self._apply_pending()
                if proc.refit_ready():  # switch to the worker's refit here, at a chunk boundary (journaled)
                    proc.control("apply_refit")
                if self.marker_inlet is not None:
                    self._poll_markers()
                chunk = src.read()
                if chunk is None:
                    if src.finished:
                        break
                    if limit_ns is not None and time.perf_counter_ns() - self.t0_ns >= limit_ns:
                        log.warning("session limit reached (%.1f min of wall-clock time); ending the session",
                                    limit_ns / 60e9)
                        proc.control("stop", "session limit reached (wall clock)")
                        break
                    if not lost and time.perf_counter_ns() - last_data > SIGNAL_LOST_S * 1e9:
                        lost = True
                        self.lost_events += 1
                        log.warning("signal lost: no samples for %.1f s", SIGNAL_LOST_S)
                        proc.control("signal_lost", True)
                        self.latest = eng.latest
                        self._dispatch_events()
                        for fn in first_sinks + state_sinks:  # the feedback outlet, then the others
                            fn(self.latest)
                    continue
                last_data = chunk.arrival_ns
                if lost:
                    lost = False
                    log.warning("signal restored")
                    proc.control("signal_lost", False)
                t_c = time.perf_counter_ns()
                st = proc.step(chunk.data)
                done = time.perf_counter_ns()
                st.arrival_ns = chunk.arrival_ns
                st.compute_ns = done - t_c
                st.published_ns = done
                self.latest = st  # publication: one reference assignment, atomic under the GIL
                age = chunk.age_s if chunk.age_s == chunk.age_s else 0.0
                self._last_sample_s = chunk.arrival_ns / 1e9 - age
                st.sample_ns = chunk.arrival_ns - int(age * 1e9)
                self.published += 1
                for fn in first_sinks:  # the feedback outlet, at once
                    fn(st)
                # after publication: nothing below delays the feedback
                self.ring.write(chunk.data, chunk.timestamps)
                for fn in chunk_sinks:
                    fn(chunk)
                self.probe.add(chunk.arrival_ns, done, done - t_c, chunk.age_s, self.t0_ns)
                self.history.add(st)
                for fn in state_sinks:
                    fn(st)
                self._dispatch_events()
            if proc.refit_pending:  # the session ended while the worker refitted: switch now, journaled
                proc.control("apply_refit")
        except BaseException as err:  # noqa: BLE001 - reported to the caller, never swallowed
            self.error = err
            log.error("acquisition stopped: %s", err)
        finally:
            self._dispatch_events()
