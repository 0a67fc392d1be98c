"""A Muse 2 / Muse S streamed over LSL as muselsl and BlueMuse publish it, without a Muse.

The common Muse streamers (muselsl, BlueMuse, Petal Metrics) publish one LSL stream of type
``EEG``: 5 channels ``TP9 AF7 AF8 TP10 Right AUX`` (labels, ``unit = microvolts`` and
``type = EEG`` in the description's ``channels``), nominal rate 256 Hz, float32, one outlet
chunk per BLE notification (12 samples), every sample with its own timestamp on the host's
LSL clock. muselsl derives those timestamps from a running fit of arrival time against the
sample index, so they follow the device's real rate (a drifting crystal shows as a slope)
and jump over samples the radio lost.

:class:`MuseLSLEmulator` does the same with real EEG: the Muse sites are taken from the
nearest sites of an EDF/BDF file (:data:`SITE_SOURCES`), the AUX electrode from C3 (a
sensorimotor site, where the ``muse-c3-gentle`` protocol wants it), resampled to 256 Hz with
``scipy.signal.resample_poly``. It runs in real time (LSL has no other clock): chunk ``c`` is
pushed when its last sample is due on the device clock, ``256 · (1 + drift_pct/100)`` samples
per second of host time. Lost chunks (``lose_chunks_pct``) are never pushed; their samples
still advance the device's sample index, so the next chunk's timestamps jump by 12 periods.
"""

from __future__ import annotations

import logging
import threading
from fractions import Fraction

import numpy as np

from ..core.errors import SourceError
from .emulator_base import ThreadedEmulator

log = logging.getLogger(__name__)

MUSE_SFREQ = 256.0
"""Nominal rate of a Muse EEG stream (Hz)."""
MUSE_CHUNK = 12
"""Samples per BLE notification, the chunk a Muse streamer pushes (47 ms at 256 Hz)."""
MUSE_LABELS = ("TP9", "AF7", "AF8", "TP10", "Right AUX")
"""Channel labels as muselsl and BlueMuse publish them."""
SITE_SOURCES = {"TP9": ("TP9", "T9", "TP7"), "AF7": ("AF7",), "AF8": ("AF8",), "TP10": ("TP10", "T10", "TP8"),
                "Right AUX": ("C3",)}
"""Muse channel -> file sites to take it from, nearest first (EEGMMIDB has T9/T10, no TP9/TP10)."""


def muse_signal(path) -> tuple[np.ndarray, list[str]]:
    """The five Muse channels from an EDF/BDF file, resampled to 256 Hz.

    Returns
    -------
    x : ndarray, shape (5, n_samples), µV
        Rows in :data:`MUSE_LABELS` order, at :data:`MUSE_SFREQ`.
    sites : list of str
        The file site each row came from.
    """
    from scipy.signal import resample_poly

    from ..hardware.sources.edf import read_raw

    raw = read_raw(path)
    sites = []
    for label, candidates in SITE_SOURCES.items():
        found = next((c for c in candidates if c in raw.ch_names), None)
        if found is None:
            raise SourceError(f"{path}: no channel {' or '.join(candidates)} for the Muse's {label}; the file has "
                              f"{', '.join(raw.ch_names[:12])}{' ...' if len(raw.ch_names) > 12 else ''}: use a file "
                              f"with those 10-10 sites (e.g. EEGMMIDB).")
        sites.append(found)
    x = raw.get_data(picks=sites) * 1e6
    ratio = Fraction(MUSE_SFREQ / float(raw.info["sfreq"])).limit_denominator(1000)
    if ratio != 1:
        x = resample_poly(x, ratio.numerator, ratio.denominator, axis=1)  # anti-aliased polyphase FIR
    return np.ascontiguousarray(x), sites


class MuseLSLEmulator(ThreadedEmulator):
    """A Muse EEG stream on LSL, laid out as muselsl/BlueMuse publish it, paced in real time.

    Parameters
    ----------
    signal : ndarray, shape (5, n)
        EEG at 256 Hz (µV), rows in :data:`MUSE_LABELS` order; looped when ``loop``.
    name : str
        Stream name (``"Muse-XXXX"`` as BlueMuse names it after the headband).
    lose_chunks_pct : float
        Percentage of 12-sample chunks never pushed (lost BLE notifications), chosen at random
        (``seed``); the first :attr:`SAFE_CHUNKS` chunks are never lost, so a reader can tell a
        gap from its own start.
    drift_pct : float
        Device clock error (%): the device samples ``256 · (1 + drift_pct / 100)`` times per
        second of host time, and the timestamps say so.
    seconds : float, optional
        Stop after this many seconds of host time (None: until :meth:`stop`).
    loop : bool
        Start the signal over when it ends.
    wait_for_consumer_s : float
        Start the device clock only when an inlet has connected (at most this long), so that
        none of the first samples go to nobody; 0 starts at once.
    seed : int

    Attributes
    ----------
    clocked_samples : int
        Device samples so far (pushed + lost): the next sample's index.
    pushed_samples, lost_samples : int
    lost_chunks : list of int
        Indices of the chunks lost, in order.
    t0 : float
        ``pylsl.local_clock()`` of device sample 0.
    finished : threading.Event
        Set when streaming ended (``seconds`` reached, signal exhausted, or stopped).
    """

    thread_name = "muse-lsl-emulator"

    SAFE_CHUNKS = 4

    def __init__(self, signal, name: str = "Muse-EMU0", lose_chunks_pct: float = 0.0, drift_pct: float = 0.0,
                 seconds: float | None = None, loop: bool = True, wait_for_consumer_s: float = 10.0, seed: int = 0):
        x = np.asarray(signal, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] != len(MUSE_LABELS) or x.shape[1] < MUSE_CHUNK:
            raise ValueError(f"signal must have shape (5, n >= {MUSE_CHUNK}) in the order {' '.join(MUSE_LABELS)}, "
                             f"not {x.shape}.")
        if not 0 <= lose_chunks_pct < 100:
            raise ValueError(f"lose_chunks_pct must be in [0, 100), not {lose_chunks_pct!r}.")
        if not -10 < drift_pct < 10:
            raise ValueError(f"drift_pct must be within ±10 %, not {drift_pct!r}.")
        if seconds is not None and not seconds > 0:
            raise ValueError(f"seconds must be > 0, not {seconds!r}.")
        self.signal, self.name, self.loop = x.astype(np.float32), str(name), bool(loop)
        self.lose_p = float(lose_chunks_pct) / 100.0
        self.drift_pct = float(drift_pct)
        self.device_sfreq = MUSE_SFREQ * (1.0 + self.drift_pct / 100.0)
        self.seconds = seconds
        self.wait_for_consumer_s = float(wait_for_consumer_s)
        self._rng = np.random.default_rng(seed)
        self.clocked_samples = self.pushed_samples = self.lost_samples = 0
        self.lost_chunks: list[int] = []
        self.t0 = float("nan")
        self.finished = threading.Event()
        self._init_thread()
        self.outlet = self._make_outlet()

    def _make_outlet(self):
        import pylsl

        info = pylsl.StreamInfo(self.name, "EEG", len(MUSE_LABELS), MUSE_SFREQ, pylsl.cf_float32,
                                f"{self.name}-neurofeed-emulator")
        info.desc().append_child_value("manufacturer", "Muse")
        chans = info.desc().append_child("channels")
        for label in MUSE_LABELS:
            ch = chans.append_child("channel")
            ch.append_child_value("label", label)
            ch.append_child_value("unit", "microvolts")
            ch.append_child_value("type", "EEG")
        return pylsl.StreamOutlet(info, MUSE_CHUNK)

    # ------------------------------------------------------------------ lifecycle (start/stop: ThreadedEmulator)
    def _close(self) -> None:
        """Close the outlet (after the thread stopped)."""
        self.outlet = None  # liblsl closes the outlet when it is released

    # ------------------------------------------------------------------ what was sent
    def timestamp(self, k) -> np.ndarray:
        """The LSL timestamp of device sample(s) ``k`` (s, ``pylsl.local_clock``)."""
        return self.t0 + np.asarray(k, dtype=np.float64) / self.device_sfreq

    def lost_between(self, t_first: float, t_last: float) -> int:
        """Samples lost with timestamps strictly between ``t_first`` and ``t_last`` (what a reader
        that received those two samples can see missing)."""
        half = 0.5 / self.device_sfreq
        n = 0
        for c in list(self.lost_chunks):
            ts = self.timestamp(np.arange(c * MUSE_CHUNK, (c + 1) * MUSE_CHUNK))
            n += int(np.count_nonzero((ts > t_first + half) & (ts < t_last - half)))
        return n

    # ------------------------------------------------------------------ the device
    def _run(self) -> None:
        import pylsl

        try:
            if self.wait_for_consumer_s > 0:
                self.outlet.wait_for_consumers(self.wait_for_consumer_s)
            self.t0 = pylsl.local_clock()
            total = self.signal.shape[1]
            c = 0
            while not self._stop.is_set():
                k0 = c * MUSE_CHUNK
                due = self.timestamp(k0 + MUSE_CHUNK - 1)  # a notification leaves when its last sample is taken
                if self.seconds is not None and due - self.t0 > self.seconds:
                    break
                if not self.loop and k0 + MUSE_CHUNK > total:
                    break
                wait = due - pylsl.local_clock()
                if wait > 0 and self._stop.wait(wait):
                    break
                idx = np.arange(k0, k0 + MUSE_CHUNK)
                if c >= self.SAFE_CHUNKS and self._rng.random() < self.lose_p:
                    self.lost_chunks.append(c)
                    self.lost_samples += MUSE_CHUNK
                else:
                    self.outlet.push_chunk(np.ascontiguousarray(self.signal[:, idx % total].T),
                                           self.timestamp(idx).tolist())
                    self.pushed_samples += MUSE_CHUNK
                self.clocked_samples += MUSE_CHUNK
                c += 1
        except Exception:  # noqa: BLE001 - a test fixture thread must say why it died
            log.exception("muse LSL emulator stopped")
        finally:
            self.finished.set()


def from_edf(path, **kwargs) -> MuseLSLEmulator:
    """A :class:`MuseLSLEmulator` sending the Muse sites of an EDF/BDF file (:func:`muse_signal`)."""
    x, _ = muse_signal(path)
    return MuseLSLEmulator(x, **kwargs)


def run_muse_lsl(args) -> int:
    """``neurofeed emulate muse-lsl``: stream until Ctrl-C, SIGTERM or ``--seconds``."""
    import signal as _signal
    import sys
    from pathlib import Path

    from ..core.errors import NeurofeedError

    if not args.file:
        raise NeurofeedError("neurofeed emulate muse-lsl needs --file F.edf (an EDF/BDF with TP9 or T9/TP7, AF7, "
                             "AF8, TP10 or T10/TP8 and C3, e.g. EEGMMIDB).")
    if not 0 <= args.lose_chunks < 100:
        raise NeurofeedError(f"--lose-chunks must be a percentage in [0, 100), not {args.lose_chunks}.")
    if not -10 < args.drift < 10:
        raise NeurofeedError(f"--drift must be within ±10 (%), not {args.drift}.")
    if args.seconds is not None and not args.seconds > 0:
        raise NeurofeedError(f"--seconds must be > 0, not {args.seconds}.")
    x, sites = muse_signal(args.file)
    emu = MuseLSLEmulator(x, name=args.lsl_name, lose_chunks_pct=args.lose_chunks, drift_pct=args.drift,
                          seconds=args.seconds, wait_for_consumer_s=0)
    try:
        _signal.signal(_signal.SIGTERM, lambda *_: emu.finished.set())
    except ValueError:  # not the main thread (run in-process by a test): Ctrl-C and --seconds still stop it
        pass
    with emu:
        print(emu.name, flush=True)
        print(f"neurofeed emulate: LSL stream {emu.name!r} (EEG, {' '.join(MUSE_LABELS)}, 256 Hz, chunks of "
              f"{MUSE_CHUNK}) sending {Path(args.file).name} ({' '.join(sites)}), {args.lose_chunks:g} % of chunks "
              f"lost, clock drift {args.drift:+g} %; try: neurofeed session --lsl-name {emu.name} "
              f"--channel-map 'Right AUX=C3' --protocol muse-c3-gentle --participant P01. Ctrl-C stops.",
              file=sys.stderr, flush=True)
        try:
            while not emu.finished.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        print(f"neurofeed emulate: stopped after {emu.clocked_samples} samples ({emu.lost_samples} lost on purpose).",
              file=sys.stderr, flush=True)
    return 0
