"""Wires source → ring buffer → DSP chain → engine → sinks, one step per chunk.

The acquisition thread reads the source and, right after each chunk arrives, runs the whole
processing step synchronously and publishes the resulting :class:`FeedbackState`. Nothing
waits for a timer; the GUI only reads ``Pipeline.latest``.
"""

from __future__ import annotations

import logging
import sys
import threading
import time

import numpy as np
from scipy import signal as sps

from .buffer import RingBuffer
from .dsp.accuracy import accuracy_delay_curve, choose_delay, format_curve
from .dsp.chain import MuChain
from .dsp.quality import QualityConfig
from .state import FeedbackState
from .protocol.engine import Engine
from .protocol.schema import Protocol, check_band

log = logging.getLogger(__name__)

SIGNAL_LOST_S = 0.5
CHOOSE_START_DELAY_S = 0.05  # delay_s = "choose": the design used until the baseline's curve picks one


def keep_memory_flat() -> None:
    """Ask glibc to return large freed buffers to the OS (Linux only; a no-op elsewhere).

    glibc raises its mmap threshold after the first large free, so later multi-MB temporaries
    (the baseline refit's least-squares system) land on the heap and stay in RSS for the rest
    of a session. A fixed 128 kB threshold keeps them mmapped and returned when freed.
    """
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


class Processor:
    """The per-chunk processing of one session: DSP chain + engine (no threads, no I/O).

    Live sessions and replays use this same object, which is what makes replay exact.

    Parameters
    ----------
    protocol : Protocol
    sfreq : float
    ch_names : list of str
    range_uv : float
        Amplifier range; samples at 98 % of it count as railed.
    seconds_scale : float
        Compresses the protocol's block durations (tests and demos).
    external : bool, optional
        Blocks driven by markers/annotations (default: the protocol's marker mode).
    """

    def __init__(self, protocol: Protocol, sfreq, ch_names, range_uv=187500.0, seconds_scale=1.0, external=None):
        protocol.check_montage(ch_names)
        check_band(protocol, sfreq)
        s, inh = protocol.signal, protocol.inhibits
        self.protocol = protocol
        self.sfreq = float(sfreq)
        self.ch_names = list(ch_names)
        qcfg = QualityConfig(rail_uv=0.98 * range_uv, emg_uv=inh.emg_uv, blink_uv=inh.blink_uv,
                             hold_s=inh.hold_s, gate_railed=inh.railed, gate_flat=inh.flat)
        # --- latency helper: delay_s = "choose" starts with the 50-ms design, chosen at the baseline's end ---
        self.choose_delay = s.delay_s == "choose"
        delay_s = CHOOSE_START_DELAY_S if self.choose_delay else s.delay_s
        self.accuracy_curve: dict = {}  # designed delay (s) -> r on this participant's baseline
        # --- end latency helper ---
        self.chain = MuChain(sfreq, ch_names, s.targets, s.reference, tuple(s.band_hz), s.estimator, delay_s,
                             s.smoothing_s, s.line_hz, qcfg, bipolar_pairs=s.bipolar)
        self.engine = Engine(protocol, sfreq, s.targets, seconds_scale, external=external)
        self.individual = s.band_mode == "individual"

        self.refit = self.individual or self.chain.needs_baseline_fit or self.choose_delay
        self.engine.defer_baseline = self.refit
        self.individual_band_hz = None
        self._warm_up()

    def _warm_up(self) -> None:
        """Compile (or load from numba's cache) every kernel of the step now, on copies, so
        that the first chunk of a session does not wait a second for the compiler. Both array
        layouts a source may hand over (contiguous, and a column slice of a larger array) are
        used, since numba compiles each separately."""
        import copy

        chain, engine = copy.deepcopy(self.chain), copy.deepcopy(self.engine)
        wide = np.zeros((len(self.ch_names), 20))
        for data in (wide[:, :10], np.zeros((len(self.ch_names), 10))):
            power = chain.process(data)
            engine.update(power, False)
        chain.retune(chain.band_hz, baseline=np.random.default_rng(0).standard_normal((len(chain.targets), 500)))
        chain.process(wide[:, :10])

    def step(self, data: np.ndarray) -> FeedbackState:
        """Process one chunk (n_channels × n_samples, µV) and return the new state."""
        eng = self.engine
        # keep the referenced baseline to fit the band / the weighted cFIR at its end
        self.chain.keep_spatial = self.refit and eng.baseline_uv2 is None and not eng.baseline_pending \
            and eng.block is not None and eng.block.label == self.protocol.baseline.block
        power = self.chain.process(data)
        q = self.chain.quality
        st = eng.update(power, self.chain.gated, q.gate_reasons, q.flags, q.emg_rms_uv)
        if eng.baseline_pending:  # this update still belongs to the baseline; SI starts with the next
            self._refit_after_baseline()
        return st

    def fit_to_baseline(self, x: np.ndarray) -> None:
        """Centre the band on the baseline's mu peak (individual band) and/or fit the weighted
        cFIR to the baseline ``x`` (targets × samples, referenced); the estimator restarts."""
        s = self.protocol.signal
        band = self.chain.band_hz
        if self.individual:
            band = individual_band(x, self.sfreq, s.band_hz, s.individual_width_hz)
            self.individual_band_hz = band
            self.engine.emit(f"individual_band/{band[0]:.2f}-{band[1]:.2f}Hz")
        self._accuracy_curve(x, band)
        self.chain.retune(band, baseline=x)

    # --- latency helper: the participant's accuracy/delay curve at the end of the baseline ---
    def _accuracy_curve(self, x: np.ndarray, band) -> None:
        """Score the weighted cFIR at 0/20/50/100-ms designs on this baseline (fit on its first
        half, scored on the rest; ~25 ms for 2 targets × 60 s, in this thread), log it as an event
        and, for ``delay_s = "choose"``, install the delay :func:`choose_delay` picks."""
        if self.chain.estimator_name not in ("wcfir", "cfir"):
            return
        self.accuracy_curve = accuracy_delay_curve(x, self.sfreq, band)
        if not self.accuracy_curve:
            return
        text = f"accuracy_curve/{format_curve(self.accuracy_curve)}"
        if self.choose_delay:
            chosen = choose_delay(self.accuracy_curve)
            if chosen is not None:
                self.chain.delay_s = chosen
            text += f" chosen_delay={1000 * self.chain.delay_s:.0f}ms"
        self.engine.emit(text)
    # --- end latency helper ---

    def _refit_after_baseline(self) -> None:
        """At the end of the baseline: centre the band on the mu peak (individual band) and/or
        fit the weighted cFIR to the baseline, then recompute baseline and threshold with the
        new estimator over the same samples, in the same chunks."""
        s = self.protocol.signal
        kept, self.chain.kept = self.chain.kept, []
        x = np.concatenate(kept, axis=1)
        sizes = [c.shape[1] for c in kept]
        self.fit_to_baseline(x)
        logs, total, pos = [], np.zeros(len(s.targets)), 0
        for n in sizes:
            p = self.chain.estimator.process_inplace(np.ascontiguousarray(x[:, pos:pos + n]))
            total += p.sum(axis=1)
            logs.append(np.log10(np.maximum(p[:, -1], 1e-12)))
            pos += n
        # the baseline block's own statistics, recomputed with the new estimator
        base_rec = [r for r in self.engine.blocks if r.label == self.protocol.baseline.block][-1]
        base_rec.power_sum, base_rec.n_power = total.copy(), pos
        self.engine.finish_baseline(total / pos, np.array(logs))


def individual_band(x: np.ndarray, sfreq: float, search_hz, width_hz: float) -> tuple[float, float]:
    """Individual mu band: the peak of the mean Welch spectrum of ``x`` within ``search_hz``, ± ``width_hz``."""
    nper = int(min(x.shape[1], 2 * sfreq))
    f, pxx = sps.welch(x, fs=sfreq, nperseg=nper)
    sel = (f >= search_hz[0]) & (f <= search_hz[1])
    peak = float(f[sel][np.argmax(pxx.mean(axis=0)[sel])])
    return (max(0.5, peak - width_hz), peak + width_hz)


class LatencyProbe:
    """Per-update timing, preallocated so an hour-long session keeps memory flat.

    Keeps the most recent ``capacity`` updates: arrival → published (ms), compute (µs),
    sample age (ms) and the arrival time (s) for the drift fit.
    """

    def __init__(self, capacity: int = 1 << 18):
        self.capacity = capacity
        self.lag_ms = np.zeros(capacity)
        self.compute_us = np.zeros(capacity)
        self.age_ms = np.full(capacity, np.nan)
        self.t_s = np.zeros(capacity)
        self.n = 0

    def add(self, arrival_ns, published_ns, compute_ns, age_s, t0_ns):
        i = self.n % self.capacity
        self.lag_ms[i] = (published_ns - arrival_ns) / 1e6
        self.compute_us[i] = compute_ns / 1e3
        self.age_ms[i] = age_s * 1e3
        self.t_s[i] = (arrival_ns - t0_ns) / 1e9
        self.n += 1

    def _view(self, a):
        return a[: min(self.n, self.capacity)]

    def summary(self) -> dict:
        """Percentiles of each measure, the update cadence and the drift of the lag."""
        if self.n == 0:
            return {"updates": 0}
        lag, comp, age, t = (self._view(a) for a in (self.lag_ms, self.compute_us, self.age_ms, self.t_s))
        pct = lambda a, qs: {f"p{q}": float(np.percentile(a, q)) for q in qs}  # noqa: E731
        out = {"updates": int(self.n),
               "sample_to_feedback_ms": {**pct(lag, (50, 95, 99)), "max": float(lag.max())},
               "compute_us": pct(comp, (50, 99))}
        age = age[np.isfinite(age)]
        if age.size:
            out["sample_age_ms"] = pct(age, (50, 99))
        if t.size > 20 and t.max() > t.min():
            out["update_hz"] = float((t.size - 1) / (t.max() - t.min()))
            # slope of the lag over the run, fitted to the medians of ten stretches so that a
            # single slow update (a refit, a GC pause) does not pose as drift
            order = np.argsort(t)
            parts = np.array_split(order, 10)
            tm = np.array([np.median(t[p]) for p in parts])
            lm = np.array([np.median(lag[p]) for p in parts])
            out["drift_ms_per_hour"] = float(np.polyfit(tm - tm.min(), lm, 1)[0] * 3600.0)
        return out


class StateHistory:
    """The last ``capacity`` updates' time, combined SI, threshold and reward, for the console
    (written in the acquisition thread into preallocated arrays; read by the GUI)."""

    def __init__(self, capacity: int = 4096):
        self.t_s = np.full(capacity, np.nan)
        self.si = np.full(capacity, np.nan)
        self.threshold = np.full(capacity, np.nan)
        self.reward = np.zeros(capacity)
        self.n = 0

    def add(self, st) -> None:
        i = self.n % self.t_s.size
        self.t_s[i], self.si[i], self.threshold[i], self.reward[i] = st.t_s, st.si_combined, st.threshold, st.reward
        self.n += 1

    def ordered(self):
        """(t, si, threshold, reward) oldest first."""
        k = self.n % self.t_s.size
        idx = np.r_[k:self.t_s.size, 0:k] if self.n >= self.t_s.size else np.arange(self.n)
        return self.t_s[idx], self.si[idx], self.threshold[idx], self.reward[idx]


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
        External marker stream (``pull() -> list[str]``) for external-marker protocols.
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
        self.t0_ns = 0
        self.published = 0

    # controls, safe from any thread -------------------------------------------------------
    def call(self, fn, *args) -> None:
        """Run ``fn(*args)`` in the acquisition thread before the next chunk (pause, marker)."""
        with self._lock:
            self._pending.append((fn, args))

    def pause(self, paused: bool) -> None:
        self.call(self.engine.set_paused, paused)

    def marker(self, text: str = "marker") -> None:
        self.call(self.engine.marker, text)

    # lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the source and the acquisition thread."""
        keep_memory_flat()
        # --- latency helper: a thread waiting for the GIL (acquisition, behind the GUI's painting) asks
        # for it after this interval; 0.5 ms instead of CPython's 5 ms cut the emulated Cyton's sample
        # wait p99 from 118 to 20 ms with the display on (benchmarks/RESULTS.md, "Electrode to feedback") ---
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.0005))
        # --- end latency helper ---
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
            self.engine.stop(why)
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
            for fn, args in pending:
                fn(*args)

    def _run(self) -> None:
        src, proc, eng = self.source, self.processor, self.engine
        chunk_sinks = [s.on_chunk for s in self.sinks if hasattr(s, "on_chunk")]
        state_sinks = [s.on_state for s in self.sinks if hasattr(s, "on_state") and not getattr(s, "publish_first", False)]
        # --- latency helper: sinks that carry the participant's feedback (the LSL feedback outlet) get
        # each state right after publication, before the ring, the recorder and the history ---
        first_sinks = [s.on_state for s in self.sinks if hasattr(s, "on_state") and getattr(s, "publish_first", False)]
        # --- end latency helper ---
        last_data = time.perf_counter_ns()
        lost = False
        try:
            while not self._stop.is_set() and not eng.finished:
                self._apply_pending()
                if self.marker_inlet is not None:
                    for m in self.marker_inlet.pull():
                        eng.end_block() if m == "end" else eng.start_block(m)
                chunk = src.read()
                if chunk is None:
                    if src.finished:
                        break
                    if not lost and time.perf_counter_ns() - last_data > SIGNAL_LOST_S * 1e9:
                        lost = True
                        self.lost_events += 1
                        log.warning("signal lost: no samples for %.1f s", SIGNAL_LOST_S)
                        self.latest = eng.set_signal_lost(True)
                        self._dispatch_events()
                        for fn in first_sinks + state_sinks:  # latency helper: first_sinks too
                            fn(self.latest)
                    continue
                last_data = chunk.arrival_ns
                if lost:
                    lost = False
                    log.warning("signal restored")
                    eng.set_signal_lost(False)
                t_c = time.perf_counter_ns()
                st = proc.step(chunk.data)
                done = time.perf_counter_ns()
                st.arrival_ns = chunk.arrival_ns
                st.compute_ns = done - t_c
                st.published_ns = done
                self.latest = st  # publication: one reference assignment, atomic under the GIL
                self.published += 1
                for fn in first_sinks:  # latency helper: the feedback outlet, at once
                    fn(st)
                # after publication: nothing below delays the feedback
                self.ring.write(chunk.data)
                for fn in chunk_sinks:
                    fn(chunk)
                self.probe.add(chunk.arrival_ns, done, done - t_c, chunk.age_s, self.t0_ns)
                self.history.add(st)
                for fn in state_sinks:
                    fn(st)
                self._dispatch_events()
        except BaseException as err:  # noqa: BLE001 - reported to the caller, never swallowed
            self.error = err
            log.error("acquisition stopped: %s", err)
        finally:
            self._dispatch_events()
