"""`neurofeed bench latency`: electrode → painted bar on an emulated Cyton (the default), or the
live pipeline's compute figures on any board (``--board``).

Electrode → painted bar, the headline: a Cyton on a pseudo-terminal, read by BrainFlow's own Cyton
driver, sends real EEG (:func:`real_eeg_signal`: EEGMMIDB S001R04 on BrainFlow's default Cyton
montage, 250 Hz) and/or a scripted mu rhythm with amplitude steps (:func:`scripted_mu_signal`); the
session runs live with recording and LSL outlets; a pylsl inlet on ``neurofeed-feedback``
(:class:`FeedbackListener`) receives the bar (``si_bar``), which is eased as the participant view
eases it (``[feedback] easing_s``, :func:`~neurofeed.ui.easing.eased_series`) and timed
against the true log power (:func:`effective_delay`). Every stage is stamped with
``perf_counter_ns`` in the same run (electrode → driver read → chunk → publish → outlet → listener)."""

from __future__ import annotations

import functools
import os
import platform
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..core.errors import NeurofeedError
from ..dsp.accuracy import ideal_envelope
from ..protocol.schema import load_protocol
from ..ui.easing import eased_series


class _StepLog:
    """Records (published time, samples processed, mean power) per update, preallocated."""

    def __init__(self, capacity=1 << 18):
        self.pub = np.zeros(capacity, dtype=np.int64)
        self.n = np.zeros(capacity, dtype=np.int64)
        self.power = np.zeros(capacity)
        self.i = 0

    def on_state(self, st):
        if self.i < self.pub.size and st.power_uv2.size:
            self.pub[self.i] = st.published_ns
            self.n[self.i] = st.sample_index
            self.power[self.i] = float(st.power_uv2.mean())
            self.i += 1


def signal_to_feedback_ms(log: _StepLog, steps_s, sfreq: float, t0_ns: int) -> float | None:
    """Median time from a scripted mu step (its sample's acquisition time) to the published
    feedback power crossing half of the step's change."""
    n, pub, amp = log.n[: log.i], log.pub[: log.i], np.sqrt(np.maximum(log.power[: log.i], 0))
    out = []
    for step in steps_s:
        s = int(round(step * sfreq))
        pre = amp[(n > s - sfreq) & (n <= s)]
        post = amp[(n > s + sfreq) & (n <= s + 2 * sfreq)]
        if pre.size < 3 or post.size < 3:
            continue
        half = 0.5 * (np.median(pre) + np.median(post))
        after = np.nonzero(n > s)[0]
        falling = np.median(post) < np.median(pre)
        hit = [i for i in after if (amp[i] < half if falling else amp[i] > half)]
        if hit:
            step_ns = t0_ns + int(s * 1e9 / sfreq)  # when the step's sample was acquired
            out.append((pub[hit[0]] - step_ns) / 1e6)
    return float(np.median(out)) if out else None


def latency_benchmark(args) -> dict:
    """Run the live pipeline for ``args.seconds`` and return the latency figures."""
    from ..hardware.sources.simulated import SimulationScript
    from ..live.session import build_session, finish_session, open_source, parse_channel_map

    protocol = load_protocol(args.protocol)
    scale = (args.seconds + 10.0) / protocol.total_duration_s()  # the protocol spans the whole run
    source = open_source(args.board, board_id=args.board_id, serial_port=args.serial_port, mac_address=args.mac_address,
                         file=args.file, lsl_name=args.lsl_name, lsl_type=args.lsl_type,
                         channel_map=parse_channel_map(args.channel_map), protocol=protocol, seconds_scale=scale)
    steps = []
    if getattr(source, "name", "") == "simulated":
        # a clean step every 4 s (1.0 -> 0.4 -> 1.0), no artifacts, for signal_to_feedback_ms
        period = 4.0
        script = SimulationScript([(t, t + period / 2, 0.4) for t in np.arange(8.0, args.seconds + 10, period)])
        source.sim.script = script
        source.sim.modulation = 0.0
        steps = [t for t, _, _ in script.mu_factor] + [t + period / 2 for t, _, _ in script.mu_factor]
    with tempfile.TemporaryDirectory() as tmp:
        pipe, rec = build_session(source, protocol, "BENCH", tmp, scale, record=True, lsl=True,
                                  busy_poll=args.busy_poll)
        log = _StepLog()
        pipe.sinks.append(log)
        if args.display:
            from ..ui.display import run_windows

            run_windows(pipe, seconds=args.seconds)
        else:
            pipe.start()
            deadline = time.time() + args.seconds
            while time.time() < deadline and pipe.running:
                time.sleep(0.05)
            pipe.stop("benchmark complete")
        summary = finish_session(pipe, rec)
    t = summary["timing"]
    result = {
        "board": source.name, "seconds": args.seconds, "sfreq": source.sfreq, "n_channels": len(source.ch_names),
        "estimator": pipe.processor.chain.estimator.describe(),
        # chunk arrival -> FeedbackState published: compute only (electrode -> feedback is
        # electrode_to_feedback_benchmark's, on the emulated Cyton)
        "compute_to_publish_ms": t.get("compute_to_publish_ms"), "compute_us": t.get("compute_us"),
        "sample_age_ms": t.get("sample_age_ms"), "update_hz": t.get("update_hz"),
        "updates": t.get("updates"), "drift_ms_per_hour": t.get("drift_ms_per_hour"),
        "dropped_samples": summary.get("dropped_samples", 0), "signal_lost_events": summary.get("signal_lost_events", 0),
        "display": bool(args.display), "busy_poll": bool(args.busy_poll), "neurofeed": __version__, "python": platform.python_version(),
        "machine": platform.machine(),
    }
    if args.display:
        result["frame_ms"] = getattr(pipe, "frame_stats", None)
    if steps:
        result["signal_to_feedback_ms"] = signal_to_feedback_ms(log, steps, source.sfreq, pipe.t0_ns)
    if pipe.error is not None:
        result["error"] = str(pipe.error)
    return result


def print_latency(r: dict) -> None:
    """A readable table of the figures."""
    def row(name, d, keys):
        if d:
            print(f"  {name:<24s} " + "  ".join(f"{k} {d[k]:8.3f}" for k in keys if k in d))
    print(f"latency on {r['board']} ({r['sfreq']:g} Hz, {r['n_channels']} ch), {r['seconds']:g} s, "
          f"{r['updates']} updates at {r.get('update_hz') or 0:.1f}/s, estimator {r['estimator']['estimator']}")
    row("compute_to_publish_ms", r["compute_to_publish_ms"], ("p50", "p95", "p99", "max"))
    row("compute_us", r["compute_us"], ("p50", "p99"))
    row("sample_age_ms", r.get("sample_age_ms"), ("p50", "p99"))
    row("frame_ms", r.get("frame_ms"), ("p50", "p99"))
    print(f"  drift_ms_per_hour        {r.get('drift_ms_per_hour') or 0:.3f}")
    print(f"  dropped_samples          {r['dropped_samples']}")
    if "signal_to_feedback_ms" in r:
        print(f"  signal_to_feedback_ms    {r['signal_to_feedback_ms']}")


# --- electrode → feedback ------------------------------------------------------------------------------------

# the recommended Cyton mu montage, placed by the emulated electrodes (the board's rows in order)
EMULATED_MU_MONTAGE = {"Fp2": "FC3", "P7": "CP3", "P8": "Cz", "O1": "FC4", "O2": "CP4"}


def scripted_mu_signal(seconds: float, sfreq: float = 250.0, n_channels: int = 8, mu_rows=(2, 3),
                       step_s: float = 3.0, high: float = 1.0, low: float = 0.3, mu_uv: float = 20.0,
                       background_uv: float = 10.0, freq_hz: float = 10.0, seed: int = 0):
    """The latency loop's electrode signal: a ``freq_hz`` mu rhythm on ``mu_rows`` whose amplitude
    steps between ``high`` and ``low`` (× ``mu_uv``) every ``step_s``, over 1/f background on every
    channel.

    Returns
    -------
    data : ndarray, shape (n_channels, n_samples)
        µV.
    envelope : ndarray, shape (n_samples,)
        The true mu amplitude (µV) on ``mu_rows``.
    """
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sfreq))
    t = np.arange(n) / sfreq
    envelope = mu_uv * np.where((t // step_s) % 2 == 0, high, low)
    spec = np.fft.rfft(rng.standard_normal((n_channels, n)), axis=1)
    f = np.fft.rfftfreq(n, 1 / sfreq)
    spec /= np.sqrt(np.maximum(f, 0.5))  # 1/f power
    data = np.fft.irfft(spec, n, axis=1)
    data *= background_uv / data.std(axis=1, keepdims=True)
    for j, row in enumerate(mu_rows):
        data[row] += envelope * np.sin(2 * np.pi * freq_hz * t + 0.7 * j)
    return data, envelope


# --- real EEG for the emulated Cyton ------------------------------------------------------------------------

#: The real EEG the latency loop sends: one EEGMMIDB record (S001R04, imagined left/right fist
#: movements, 125 s), BrainFlow's default Cyton montage, resampled to the Cyton's 250 Hz. One place
#: to point it elsewhere (e.g. the suite's tests/data).
REAL_EEG_RECORD = "eegmmidb-S001/S001R04.edf"
#: Where the real EEG is looked for, in order, after ``$NEUROFEED_EEG_DIR``: a source checkout's own
#: test data (``tests/data``, carried xz-compressed by the repository) and a ``shared/data`` folder beside
#: the checkout (the full records, on the developers' machines). An installed wheel carries neither:
#: set ``NEUROFEED_EEG_DIR`` or pass ``--eeg-file``.
_CHECKOUT = Path(__file__).resolve().parents[2]
REAL_EEG_DIRS = (str(_CHECKOUT / "tests" / "data"), str(_CHECKOUT.parent / "shared" / "data"))


def unpack_xz(packed: Path, out: Path) -> Path:
    """``packed`` (``*.edf.xz``) unpacked to ``out`` unless ``out`` is already as new; written to a
    temporary name and renamed, so two processes at once never read half a file. Returns ``out``."""
    import lzma

    packed, out = Path(packed), Path(out)
    if out.exists() and out.stat().st_mtime >= packed.stat().st_mtime:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(lzma.decompress(packed.read_bytes()))
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def _unpacked(packed: Path) -> Path:
    """``packed`` unpacked into the user cache folder (once)."""
    from platformdirs import user_cache_path

    return unpack_xz(packed, user_cache_path("neurofeed") / "eeg" / packed.parent.name / packed.with_suffix("").name)


def real_eeg_path() -> Path:
    """The file :func:`real_eeg_signal` reads: :data:`REAL_EEG_RECORD` under ``$NEUROFEED_EEG_DIR``
    or the first of :data:`REAL_EEG_DIRS` holding it (as ``.edf``, or as the repository's
    ``.edf.xz``, unpacked into the user cache)."""
    env = os.environ.get("NEUROFEED_EEG_DIR")
    dirs = [env] if env else list(REAL_EEG_DIRS)
    for d in dirs:
        p = Path(d) / REAL_EEG_RECORD
        if p.exists():
            return p
        packed = p.with_name(p.name + ".xz")
        if packed.exists():
            return _unpacked(packed)
    raise NeurofeedError(f"real EEG for the latency loop: no {REAL_EEG_RECORD} under {' or '.join(dirs)}; "
                         f"set NEUROFEED_EEG_DIR to the folder holding it, or run with --signal scripted.")


def real_eeg_signal(seconds: float, sfreq: float = 250.0):
    """The latency loop's real electrode signal: :func:`real_eeg_path` on BrainFlow's default Cyton
    montage (Fp1 Fp2 C3 C4 P7 P8 O1 O2), resampled to ``sfreq``, its first ``seconds`` (all of it if
    shorter).

    Returns
    -------
    data : ndarray, shape (8, n_samples)
        µV.
    ch_names : list of str
    """
    from .cyton_emulator import edf_signal, montage_names

    names = montage_names("cyton", "default")
    data = edf_signal(real_eeg_path(), names, sfreq)
    return np.ascontiguousarray(data[:, : int(round(seconds * sfreq))]), list(names)


class BurstRelay:
    """A USB-serial bridge that holds bytes and lets them through in bursts, between an emulated
    board's pseudo-terminal and the driver: an FTDI chip with its latency timer at ``burst_s``
    (16 ms by default on Linux), or a board that sends several samples per packet (Muse: 12
    samples at 256 Hz, about every 47 ms).

    The relay reads the board's pty as a driver would and writes to a second pty, whose
    :attr:`port` the driver opens; commands from the driver pass straight through.
    """

    def __init__(self, board_port: str, burst_s: float):
        import pty
        import tty

        self.burst_s = float(burst_s)
        self.board = os.open(board_port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.board)
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        tty.setraw(self.master)
        self.port = os.ttyname(self.slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="burst-relay", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import select

        held = bytearray()
        next_flush = time.perf_counter() + self.burst_s
        while not self._stop.is_set():
            r, _, _ = select.select([self.board, self.master], [], [], max(0.0, next_flush - time.perf_counter()))
            for fd in r:
                try:
                    data = os.read(fd, 4096)
                except (BlockingIOError, OSError):
                    continue
                if fd == self.master:
                    os.write(self.board, data)  # commands: at once
                else:
                    held += data
            if time.perf_counter() >= next_flush:
                if held:
                    os.write(self.master, bytes(held))
                    held.clear()
                next_flush += self.burst_s
                if next_flush < time.perf_counter():  # late (a busy machine): restart the timer
                    next_flush = time.perf_counter() + self.burst_s

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        for fd in (self.board, self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


def _host_board(data, burst_s: float, conn, stop) -> None:
    """The emulated board's process body: a :class:`~neurofeed.devtools.cyton_emulator.CytonEmulator` (behind a
    :class:`BurstRelay` when ``burst_s`` > 0); sends the port, then, once stopped, the host write
    time of every sample. Its own process, as a board is its own device: the session's GIL never
    delays a packet, and the board's threads never delay the session."""
    from .cyton_emulator import CytonEmulator

    emu = CytonEmulator(data, loop=False).start()
    relay = BurstRelay(emu.port, burst_s) if burst_s > 0 else None
    conn.send((relay or emu).port)
    stop.wait()
    written = emu.write_times_ns(0, emu.clocked_samples)
    if relay is not None:
        relay.close()
    emu.stop()
    conn.send(written)


class EmulatedBoard:
    """:func:`_host_board` in a spawned process: :attr:`port` for BrainFlow, :meth:`close` returns
    the host write time (``perf_counter_ns``, CLOCK_MONOTONIC) of each sample sent."""

    def __init__(self, data: np.ndarray, burst_s: float = 0.0):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._stop = ctx.Event()
        self._proc = ctx.Process(target=_host_board, args=(data, burst_s, child, self._stop),
                                 name="emulated-board", daemon=True)
        self._proc.start()
        if not self._conn.poll(60.0):
            self._proc.terminate()
            raise RuntimeError("the emulated board did not start")
        self.port = self._conn.recv()

    def close(self) -> np.ndarray:
        """Stop the board; the write time of every sample it sent (ns)."""
        self._stop.set()
        written = self._conn.recv() if self._conn.poll(30.0) else np.zeros(0, dtype=np.int64)
        self._proc.join(5.0)
        if self._proc.is_alive():
            self._proc.terminate()
        return written


def _listen(name: str, uid: str, conn, stop, channels=(0,)) -> None:
    """The listener process's body (module level so that ``spawn`` can import it)."""
    import pylsl

    found = []
    # by uid too: other neurofeed sessions on the machine publish the same stream name
    pred = f"name='{name}'" + (f" and uid='{uid}'" if uid else "")
    while not found and not stop.is_set():
        found = pylsl.resolve_bypred(pred, 1, 0.5)
    if not found:
        conn.send(None)
        return
    inlet = pylsl.StreamInlet(found[0], max_buflen=10, processing_flags=0)
    inlet.open_stream(timeout=5.0)
    conn.send("ready")
    si, push_s, recv_ns = [], [], []
    while not stop.is_set():
        # pull_sample returns as soon as one sample is there (pull_chunk with a timeout waits
        # for a full chunk or the timeout)
        sample, t = inlet.pull_sample(timeout=0.2)
        now = time.perf_counter_ns()
        if sample is not None:
            si.append([sample[k] for k in channels])
            push_s.append(t)
            recv_ns.append(now)
    inlet.close_stream()
    conn.send((np.array(si, dtype=float).reshape(-1, len(channels)), np.array(push_s, dtype=float),
               np.array(recv_ns, dtype=np.int64)))


class FeedbackListener:
    """A pylsl inlet on the ``neurofeed-feedback`` outlet (loopback) in its own process, as a
    stimulus program would be: every sample's first channel (``si_combined``; ``channels`` picks
    more, kept in :attr:`values`), its LSL timestamp (the push time, ``pylsl.local_clock``) and the
    host time it was received (``perf_counter_ns``, CLOCK_MONOTONIC, the same clock in every
    process on Linux). A separate process keeps the GIL of a busy session (drawing, recording) out
    of the receive times."""

    def __init__(self, name: str = "neurofeed-feedback", uid: str = "", channels=(0,)):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._stop = ctx.Event()
        self._proc = ctx.Process(target=_listen, args=(name, uid, child, self._stop, tuple(channels)),
                                 name="feedback-listener",
                                 daemon=True)
        self._proc.start()
        self.si, self.push_s, self.recv_ns, self.n = np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64), 0
        self.values = np.zeros((0, len(channels)))

    def wait_ready(self, timeout_s: float = 120.0) -> bool:
        """True once the inlet is open (False if the outlet was not found in time)."""
        return self._conn.poll(timeout_s) and self._conn.recv() == "ready"

    def close(self) -> None:
        """Stop listening and collect what was received (idempotent)."""
        if self._proc is None:
            return
        self._stop.set()
        while self._conn.poll(10.0):
            got = self._conn.recv()
            if got is None:
                break
            if not isinstance(got, str):  # skip a "ready" nobody waited for
                self.values, self.push_s, self.recv_ns = got
                self.si = self.values[:, 0]
                self.n = self.si.size
                break
        self._proc.join(5.0)
        if self._proc.is_alive():
            self._proc.terminate()
        self._proc = None


def correlation_by_lag(fb_ns, fb_log, electrode_ns, truth_log, lags_ms) -> np.ndarray:
    """Pearson r between the feedback log power observed at ``fb_ns`` and the true log power of
    the sample that left the electrode ``lag`` ms earlier, for each lag in ``lags_ms``."""
    out = np.full(len(lags_ms), np.nan)
    for i, lag in enumerate(lags_ms):
        k = np.searchsorted(electrode_ns, fb_ns - int(lag * 1_000_000), side="right") - 1
        sel = k >= 0
        if sel.sum() >= 100:
            out[i] = np.corrcoef(fb_log[sel], truth_log[k[sel]])[0, 1]
    return out


def effective_delay(fb_ns: np.ndarray, fb_log: np.ndarray, electrode_ns: np.ndarray, truth_log: np.ndarray,
                    max_lag_ms: int = 1000, hold_step_ms: int = 2) -> tuple[float, float]:
    """The lag (ms, 1-ms steps) at which the feedback log power correlates best with the true log
    power, and r there.

    Parameters
    ----------
    fb_ns : ndarray (n,)
        Host times (``perf_counter_ns``) the feedback values were observed (sorted); each value
        counts as shown until the next (sampled every ``hold_step_ms``).
    fb_log : ndarray (n,)
        Feedback log power (``si_combined``).
    electrode_ns : ndarray (m,)
        Host time each electrode sample was taken (sorted).
    truth_log : ndarray (m,)
        True log power of each sample: log10 of the squared Hilbert envelope of the ideal,
        zero-phase band-pass of the referenced signal, whole record (the project's truth,
        :func:`neurofeed.dsp.accuracy.ideal_envelope`), combined over targets like the SI.

    Returns
    -------
    delay_ms, r : float
        NaN if fewer than 100 feedback values overlap the truth.
    """
    ok = np.isfinite(fb_log)
    fb_ns, fb_log = fb_ns[ok], fb_log[ok]
    if fb_ns.size < 2:
        return float("nan"), float("nan")
    # what is on the screen: each value held until the next one arrives, seen every 2 ms (a
    # board that sends bursts updates the feedback less often, and the participant sees that)
    grid = np.arange(fb_ns[0], fb_ns[-1], hold_step_ms * 1_000_000, dtype=np.int64)
    held = fb_log[np.searchsorted(fb_ns, grid, side="right") - 1]
    lags = np.arange(0, max_lag_ms + 1)
    r = correlation_by_lag(grid, held, electrode_ns, truth_log, lags)
    if not np.isfinite(r).any():
        return float("nan"), float("nan")
    i = int(np.nanargmax(r))
    return float(lags[i]), float(r[i])


def true_log_power(ref: np.ndarray, sfreq: float, band_hz, combine: str = "mean") -> np.ndarray:
    """log10 of the ideal band envelope's power (``A**2 / 2``) of each referenced target row,
    combined across targets as the SI is (mean, left, right, asymmetry)."""
    lp = np.log10(np.maximum(ideal_envelope(ref, sfreq, band_hz) ** 2 / 2, 1e-12))
    if combine == "left":
        return lp[0]
    if combine == "right":
        return lp[1]
    if combine == "asymmetry":
        return lp[1] - lp[0]
    return lp.mean(axis=0)


def step_crossings_ms(fb_ns, fb_log, step_ns, settle_s: float = 1.5, span_s: float = 2.9) -> np.ndarray:
    """Per amplitude step: time from the step leaving the electrode to the feedback first crossing
    half-way (in log power) between its medians over the 1.5 s before and 1.5–2.9 s after."""
    out = []
    ok = np.isfinite(fb_log)
    fb_ns, fb_log = fb_ns[ok], fb_log[ok]
    for t in step_ns:
        pre = fb_log[(fb_ns > t - settle_s * 1e9) & (fb_ns <= t)]
        post = fb_log[(fb_ns > t + settle_s * 1e9) & (fb_ns <= t + span_s * 1e9)]
        if pre.size < 10 or post.size < 10:
            continue
        a, b = np.median(pre), np.median(post)
        half = 0.5 * (a + b)
        after = np.nonzero((fb_ns > t) & (fb_ns <= t + span_s * 1e9))[0]
        hit = after[(fb_log[after] < half) if b < a else (fb_log[after] > half)]
        if hit.size:
            out.append((fb_ns[hit[0]] - t) / 1e6)
    return np.array(out)


class _UpdateLog:
    """Per chunk: first sample, size, arrival; per published state: time, samples, si_combined."""

    def __init__(self, capacity=1 << 18):
        self.c_first = np.zeros(capacity, dtype=np.int64)
        self.c_n = np.zeros(capacity, dtype=np.int64)
        self.c_arrival = np.zeros(capacity, dtype=np.int64)
        self.nc = 0
        self.pub = np.zeros(capacity, dtype=np.int64)
        self.arrival = np.zeros(capacity, dtype=np.int64)
        self.n = np.zeros(capacity, dtype=np.int64)
        self.si = np.full(capacity, np.nan)
        self.bar = np.full(capacity, np.nan)
        self.ns = 0

    def on_chunk(self, chunk):
        if self.nc < self.c_n.size:
            i = self.nc
            self.c_first[i], self.c_n[i], self.c_arrival[i] = chunk.first_sample, chunk.n_samples, chunk.arrival_ns
            self.nc += 1

    def on_state(self, st):
        if self.ns < self.pub.size and st.published_ns:
            i = self.ns
            self.pub[i], self.arrival[i], self.n[i], self.si[i] = st.published_ns, st.arrival_ns, st.sample_index, st.si_combined
            self.bar[i] = st.si_bar
            self.ns += 1


def _pct(a, qs=(50, 90, 99)) -> dict:
    a = np.asarray(a, dtype=float)
    a = a[np.isfinite(a)]
    return {f"p{q}": float(np.percentile(a, q)) for q in qs} if a.size else {}


def _lsl_offset_ns() -> int:
    """``pylsl.local_clock()`` minus ``perf_counter_ns`` (the same steady clock on Linux; measured anyway)."""
    import pylsl

    d = []
    for _ in range(200):
        a = time.perf_counter_ns()
        c = pylsl.local_clock()
        b = time.perf_counter_ns()
        d.append(c * 1e9 - (a + b) / 2)
    return int(np.median(d))


def electrode_to_feedback_benchmark(args) -> dict:
    """Electrode → feedback on an emulated Cyton read by BrainFlow's own driver.

    The emulated electrodes carry :func:`scripted_mu_signal` (or real EEG, ``args.signal == "eeg"``);
    the demo (or ``--protocol``) protocol runs live with recording and LSL outlets on; a
    :class:`FeedbackListener` on the feedback outlet times ``si_combined`` and the bar against the true
    envelope. Returns the figures (ms, see :func:`print_e2e`).
    """
    protocol = _bench_protocol(args)
    sfreq = 250.0
    burst_s = float(getattr(args, "burst_ms", 0.0) or 0.0) / 1000
    kind = getattr(args, "signal", None) or "scripted"
    data, env, channel_map, seconds = _electrode_signal(args, kind, float(args.seconds), sfreq)
    run = _run_emulated_session(args, protocol, data, channel_map, burst_s, seconds)
    electrode = run.written  # when each sample left the "electrode" (the board's pty)
    env = env[: electrode.size]
    steps = np.nonzero(np.diff(env) != 0)[0] + 1
    chain = run.pipe.processor.chain
    truth = true_log_power(chain.spatial(data[:, : electrode.size]), sfreq, chain.band_hz, protocol.signal.combine)
    # feedback is scored after the baseline (+ 3 s for the refitted estimator to settle)
    si_log = run.log.si[: run.log.ns]
    first_si = np.nonzero(np.isfinite(si_log))[0]
    t_start = run.log.pub[first_si[0]] + 3_000_000_000 if first_si.size else np.iinfo(np.int64).max
    observe = functools.partial(_observe, electrode=electrode, truth=truth, t_start=t_start,
                                step_ns=electrode[steps[electrode[steps] > t_start]])
    recv = run.listener.recv_ns[: run.listener.n]
    push_ns = (run.listener.push_s[: run.listener.n] * 1e9 - run.offset_ns).astype(np.int64)
    easing_s = protocol.feedback.easing_s
    bar_seen = run.listener.values[: run.listener.n, 1]
    si_seen = run.listener.si[: run.listener.n]
    result = {
        # the headline: the bar the participant sees (si_bar after [feedback] smoothing_s, eased on
        # the screen by [feedback] easing_s), as a program in another process receives it; drawing
        # it adds a frame (--display: published + frame p50, electrode_to_frame_ms)
        "electrode_to_painted_bar_ms": observe(recv, bar_seen, easing_s),
        **_bench_setup(args, kind, burst_s, run.pipe, protocol, seconds, sfreq),
        "electrode_to_feedback_ms": observe(recv, si_seen),
        "electrode_to_outlet_ms": observe(push_ns, si_seen),
        "electrode_to_publish_ms": observe(run.log.pub[: run.log.ns], si_log),
        # the bar: the same SI after the protocol's [feedback] smoothing_s (its own stage)
        "electrode_to_bar_ms": observe(recv, bar_seen),
        "bar_smoothing_s": protocol.feedback.smoothing_s,
        "bar_easing_s": easing_s,
        "delay_s_in_use": float(chain.delay_s),
        "effective_delays_on_baseline": {f"{1000 * d:.0f}": [1000 * lag, r]
                                         for d, (lag, r) in run.pipe.processor.effective_delays.items()},
    }
    # the estimator's own share: the same states on the samples' own clock (no transport, no compute)
    n_idx = run.log.n[: run.log.ns]
    virt = electrode[np.clip(n_idx - 1, 0, electrode.size - 1)]  # the newest sample's own write time
    result["estimator_only_ms"] = observe(virt, si_log)
    result["stages_ms"] = _stage_figures(run.log, electrode, push_ns, recv, t_start)
    result.update(_run_figures(args, run, recv, int(electrode[0])))
    if args.display:
        result.update(_frame_figures(run, observe, easing_s))
    if run.pipe.error is not None:
        result["error"] = str(run.pipe.error)
    return result


def _bench_protocol(args):
    """The benchmark's protocol (``args.protocol``) with the ``--estimator``, ``--delay-s`` and
    ``--bar-smoothing-s`` overrides."""
    protocol = load_protocol(args.protocol)
    if getattr(args, "estimator", None):
        protocol.signal.estimator = args.estimator
    if getattr(args, "delay_s", None) is not None:
        protocol.signal.delay_s = args.delay_s
    if getattr(args, "bar_smoothing_s", None) is not None:
        if not args.bar_smoothing_s >= 0:
            raise NeurofeedError(f"--bar-smoothing-s {args.bar_smoothing_s}: expected seconds >= 0 (e.g. 0.1).")
        protocol.feedback.smoothing_s = args.bar_smoothing_s
    return protocol


def _electrode_signal(args, kind: str, seconds: float, sfreq: float):
    """What the emulated electrodes carry.

    Returns
    -------
    data : ndarray, shape (8, n), µV
        The eight Cyton channels at ``sfreq`` Hz.
    env : ndarray, shape (n,)
        The scripted mu amplitude (its steps are timed); zeros for real EEG.
    channel_map : dict or None
        The scripted montage, or None (BrainFlow's default Cyton montage) for real EEG.
    seconds : float
        The run's length (s): ``seconds``, shortened to a real EEG record's own length.
    """
    if kind == "eeg":
        eeg_file = getattr(args, "eeg_file", None)
        if eeg_file:
            from .cyton_emulator import edf_signal, montage_names

            data = edf_signal(eeg_file, montage_names("cyton", "default"), sfreq)
        else:
            data, _ = real_eeg_signal(seconds + 30.0, sfreq)
        seconds = min(seconds, data.shape[1] / sfreq - 5.0)  # the record's own length
        return data, np.zeros(data.shape[1]), None, seconds  # BrainFlow's default Cyton montage; no scripted steps
    data, env = scripted_mu_signal(seconds + 30.0, sfreq)
    return data, env, EMULATED_MU_MONTAGE, seconds


@dataclass
class _BenchRun:
    """What one emulated session left behind: its pipeline and summary, the update log, the feedback
    listener, the LSL clock offset (ns) and the write time of every sample sent (ns)."""

    pipe: object
    summary: dict
    log: "_UpdateLog"
    listener: "FeedbackListener"
    offset_ns: int
    written: np.ndarray


def _run_emulated_session(args, protocol, data, channel_map, burst_s: float, seconds: float) -> _BenchRun:
    """Run ``protocol`` live for ``seconds`` on an :class:`EmulatedBoard` sending ``data``, recording
    (in a temporary folder) and with LSL outlets, a :class:`FeedbackListener` on the feedback outlet."""
    from ..hardware.boards import get_board
    from ..hardware.sources.brainflow import BrainFlowSource
    from ..live.lsl_outlets import LSLOutlets
    from ..live.session import build_session, finish_session

    scale = (seconds + 10.0) / protocol.total_duration_s()  # the protocol spans the whole run
    board = EmulatedBoard(data, burst_s)
    listener = None
    try:
        source = BrainFlowSource(get_board("cyton"), serial_port=board.port, channel_map=channel_map)
        with tempfile.TemporaryDirectory() as tmp:
            pipe, rec = build_session(source, protocol, "BENCH", tmp, scale, record=True, lsl=True,
                                      busy_poll=args.busy_poll)
            log = _UpdateLog()
            pipe.sinks.append(log)
            outlet = next(s for s in pipe.sinks if isinstance(s, LSLOutlets))
            # si_combined (channel 0) and the bar the participant is shown (si_bar: smoothed, its own channel)
            bar_channel = outlet.labels.index("si_bar")
            listener = FeedbackListener(uid=outlet.values.get_info().uid(), channels=(0, bar_channel))
            if not listener.wait_ready():
                raise RuntimeError("the feedback listener found no neurofeed-feedback outlet")
            offset = _lsl_offset_ns()
            _run_for(pipe, seconds, args.display)
            time.sleep(0.3)  # the last pushes reach the listener
            listener.close()
            summary = finish_session(pipe, rec)
    finally:
        written = board.close()
        if listener is not None:
            listener.close()
    return _BenchRun(pipe, summary, log, listener, offset, written)


def _run_for(pipe, seconds: float, display: bool) -> None:
    """Run the session ``seconds``: in the views (``display``), else headless."""
    if display:
        from ..ui.display import run_windows

        run_windows(pipe, seconds=seconds)
        return
    pipe.start()
    deadline = time.time() + seconds
    while time.time() < deadline and pipe.running:
        time.sleep(0.05)
    pipe.stop("benchmark complete")


def _observe(t_ns, values, easing_s=0.0, *, electrode, truth, t_start, step_ns) -> dict:
    """A feedback series (times ``t_ns``, ns; ``values``) after ``t_start``, as shown on the screen
    (eased by ``easing_s``, s) and timed against the ``truth`` at the ``electrode`` write times: the
    effective delay (ms) and its correlation r, and the crossings of the scripted steps ``step_ns``."""
    keep = (t_ns >= t_start) & np.isfinite(values)
    t_ns, values = eased_series(t_ns[keep], values[keep], easing_s)  # what is on the screen, every 2 ms
    delay, r = effective_delay(t_ns, values, electrode, truth)
    st = step_crossings_ms(t_ns, values, step_ns)
    return {"effective_delay": delay, "r": r, **({"step_p50": float(np.percentile(st, 50)),
                                                  "step_p90": float(np.percentile(st, 90)),
                                                  "steps": int(st.size)} if st.size else {})}


def _bench_setup(args, kind, burst_s, pipe, protocol, seconds, sfreq) -> dict:
    """What the benchmark ran: the signal, the loop, the emulator, the truth, the reference, the estimator."""
    return {
        "signal_kind": kind,
        "eeg_file": (str(getattr(args, "eeg_file", None) or real_eeg_path())) if kind == "eeg" else None,
        "loop": "emulated Cyton (pty, BrainFlow's own driver) -> neurofeed -> LSL neurofeed-feedback -> pylsl inlet",
        "emulator": "neurofeed.devtools.cyton_emulator.CytonEmulator in its own process"
                    + (f", behind a {burst_s * 1000:g}-ms BurstRelay" if burst_s > 0 else ""),
        "burst_ms": burst_s * 1000,
        "signal": ("real EEG on BrainFlow's default Cyton montage (Fp1 Fp2 C3 C4 P7 P8 O1 O2), resampled to 250 Hz"
                   if kind == "eeg" else
                   "10 Hz mu at C3/C4, amplitude 20 uV x 1.0/0.3 stepping every 3 s, 1/f background 10 uV rms"),
        "truth": "log10 power of the Hilbert envelope of the ideal zero-phase band-pass of the referenced "
                 "electrode signal (whole record), combined like the SI; steps: the scripted amplitude steps",
        "reference": pipe.processor.reference_used,
        "protocol": protocol.name, "seconds": seconds, "sfreq": sfreq,
        "estimator": pipe.processor.chain.estimator.describe(),
        "delay_s_design": pipe.processor.chain.delay_s,
    }


def _stage_figures(log, electrode, push_ns, recv, t_start) -> dict:
    """Per update, from the same run: electrode -> driver read -> chunk -> publish -> outlet -> listener
    (ms percentiles), and the samples per chunk."""
    arrival = log.arrival[: log.ns]
    c_last = log.c_first[: log.nc] + log.c_n[: log.nc] - 1
    ok = (c_last >= 0) & (c_last < electrode.size) & (log.c_arrival[: log.nc] >= t_start)
    pub_sorted = log.pub[: log.ns]
    j = np.searchsorted(pub_sorted, push_ns, side="right") - 1
    okj = (j >= 0) & (push_ns >= t_start)
    late = pub_sorted >= t_start
    return {
        "electrode_to_driver_read": _pct((log.c_arrival[: log.nc][ok] - electrode[c_last[ok]]) / 1e6),
        "electrode_to_driver_read_all_samples": _pct(np.concatenate(
            [(log.c_arrival[i] - electrode[log.c_first[i]:c_last[i] + 1]) / 1e6
             for i in range(log.nc) if ok[i]]) if ok.any() else []),
        "chunk_to_publish": _pct((pub_sorted[late] - arrival[late]) / 1e6),
        "publish_to_outlet": _pct((push_ns[okj] - pub_sorted[j[okj]]) / 1e6),
        "outlet_to_listener": _pct((recv[push_ns >= t_start] - push_ns[push_ns >= t_start]) / 1e6),
        "samples_per_chunk": _pct(log.c_n[: log.nc], (50, 90, 99)),
    }


def _run_figures(args, run: _BenchRun, recv, t0_ns: int) -> dict:
    """The session's own timing summary, the machine, and the spans the listener and the publisher saw (s)."""
    t = run.summary["timing"]
    pub = run.log.pub[: run.log.ns]
    return {
        "compute_to_publish_ms": t.get("compute_to_publish_ms"), "compute_us": t.get("compute_us"),
        "updates": t.get("updates"), "update_hz": t.get("update_hz"),
        "dropped_samples": run.summary.get("dropped_samples", 0), "display": bool(args.display),
        "busy_poll": bool(args.busy_poll), "neurofeed": __version__, "python": platform.python_version(),
        "machine": platform.machine(), "listener_samples": int(run.listener.n),
        "listener_span_s": [float((recv[0] - t0_ns) / 1e9), float((recv[-1] - t0_ns) / 1e9)] if recv.size else None,
        "published_span_s": [float((pub[0] - t0_ns) / 1e9), float((pub[-1] - t0_ns) / 1e9)],
    }


def _frame_figures(run: _BenchRun, observe, easing_s: float) -> dict:
    """``--display``: the frame times (ms) and the bar as published -> its frame painted (what the
    participant sees)."""
    fr = getattr(run.pipe, "frame_stats", None)
    out = {"frame_ms": fr}
    if fr and "p50" in fr:
        bar_pub = observe(run.log.pub[: run.log.ns], run.log.bar[: run.log.ns], easing_s)
        out["electrode_to_frame_ms"] = {"effective_delay": bar_pub["effective_delay"] + fr["p50"],
                                        "r": bar_pub["r"], "frame_p50": fr["p50"], "frame_p99": fr.get("p99"),
                                        "of": "si_bar (the bar, eased by easing_s), published + frame p50"}
    return out


def print_e2e(r: dict) -> None:
    """A readable table of the electrode-to-feedback figures: the painted bar first, then the stages."""
    if "runs" in r:
        for sub in r["runs"].values():
            print_e2e(sub)
        return
    b = r["electrode_to_painted_bar_ms"]
    what = f"real EEG ({os.path.basename(r['eeg_file'])})" if r.get("signal_kind") == "eeg" else "the scripted step loop"
    steps = f", step p50 {b['step_p50']:.0f} ms p90 {b['step_p90']:.0f} ms" if "step_p50" in b else ""
    print(f"ELECTRODE -> PAINTED BAR on {what}: {b['effective_delay']:.0f} ms at r {b['r']:.3f}{steps}"
          f"  (design {1000 * r['delay_s_in_use']:.0f} ms, bar smoothing {r['bar_smoothing_s']:g} s, "
          f"easing {r['bar_easing_s']:g} s, reference {r.get('reference')})")
    print(f"  on {r['loop']}\n  estimator {r['estimator']['estimator']} "
          f"(design delay {r['delay_s_design']}), burst {r['burst_ms']:g} ms, {r['seconds']:g} s")
    for k in ("electrode_to_painted_bar_ms", "electrode_to_feedback_ms", "electrode_to_outlet_ms", "electrode_to_publish_ms", "estimator_only_ms",
              "electrode_to_bar_ms", "electrode_to_frame_ms"):
        if k in r:
            print(f"  {k:<26s} " + "  ".join(f"{a} {v:.3f}" if isinstance(v, float) else f"{a} {v}"
                                              for a, v in r[k].items()))
    for k, v in r["stages_ms"].items():
        print(f"  stage {k:<36s} " + "  ".join(f"{a} {x:.3f}" for a, x in v.items()))
    print(f"  compute_to_publish_ms    {r['compute_to_publish_ms']}")
    print(f"  dropped_samples          {r['dropped_samples']}")
