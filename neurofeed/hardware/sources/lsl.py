"""An LSL inlet (pylsl) as a chunk source, and an LSL marker inlet."""

from __future__ import annotations

import time

import numpy as np

from ...core.channels import normalize_names
from ...core.chunk import Chunk, insert_gaps
from ...core.errors import SourceError
from .base import Source, rename_channels

GAP_PERIODS = 1.5
"""A timestamp step longer than this many sample periods is a gap (of ``round(step / period) - 1`` samples)."""
DRIFT_TOLERANCE = 0.001
"""A measured rate further than this (0.1 %) from the nominal one is corrected in the timeline."""
RATE_SETTLE_S = 5.0
"""Seconds of the source clock before the measured rate is judged (and corrected if it drifts)."""
BREAK_S = 0.5
"""A silence longer than this (s, on the source clock) is a break in the stream, not a gap: the
pipeline reports it as "signal lost" (after the same 0.5 s), the stream resumes without seconds
of invented samples, and the rate fit starts afresh."""

_VOLT_SCALE = {"v": 1e6, "volts": 1e6, "mv": 1e3, "millivolts": 1e3, "uv": 1.0, "microvolts": 1.0, "µv": 1.0,
               "μv": 1.0, "nv": 1e-3, "nanovolts": 1e-3}


def unit_scale(unit: str, label: str, stream: str, assume_uv: bool = False) -> float:
    """The factor to µV of a channel's ``unit`` (its LSL description), or a one-line
    :class:`SourceError` for a missing or unknown unit unless ``assume_uv`` (``--assume-uv``)."""
    u = (unit or "").strip().lower()
    if u in _VOLT_SCALE:
        return _VOLT_SCALE[u]
    if assume_uv:
        return 1.0
    what = f"unit {unit!r}" if u else "no unit"
    raise SourceError(f"LSL stream {stream!r}: channel {label or '?'} has {what}; neurofeed needs volts "
                      f"(microvolts, millivolts, volts) in the stream's channel description, or --assume-uv if "
                      f"you know the samples are µV.")


def resolve_stream(name: str | None = None, stype: str | None = None, timeout_s: float = 5.0):
    """The first LSL stream with this name (or type), or a clear error."""
    import pylsl

    prop, value = ("name", name) if name else ("type", stype or "EEG")
    streams = pylsl.resolve_byprop(prop, value, 1, timeout_s)
    if not streams:
        raise SourceError(f"No LSL stream with {prop} {value!r} found within {timeout_s:g} s; "
                          f"is the outlet running on this network?")
    return streams[0]


class StampTimeline:
    """Gaps and the true rate of a stream from its per-sample timestamps, and a timeline at the
    nominal rate.

    LSL carries no sample counter, but the Muse streamers (muselsl, BlueMuse) and most EEG
    outlets stamp every sample on the device's own time base: a step of more than
    :data:`GAP_PERIODS` sample periods means ``round(step / period) - 1`` samples never
    arrived. They are handed over as gap samples (NaN columns with interpolated timestamps,
    ``Chunk.gap``), exactly as the BrainFlow source hands over package-counter gaps, so the
    chain fills or holds them and the sample-counted timeline keeps its length.

    The rate is measured against the source clock: a least-squares line through every arrived
    sample's timestamp against its index (gaps counted). Once :data:`RATE_SETTLE_S` of source
    time has passed, a rate further than :data:`DRIFT_TOLERANCE` from the nominal one is
    corrected by **resampling** onto the nominal rate (linear interpolation at positions
    ``k · ratio`` of the input, ``ratio`` = measured / nominal, refreshed every chunk).

    Why resample rather than re-stamp: everything downstream counts time in samples at the
    nominal rate (the block clock, the BDF's rate, dyad alignment, replay). Re-stamping would
    make the timestamps right but leave a 0.5 %-fast device's session 0.5 % short of the wall
    clock (the processor is built at the nominal rate before the first sample arrives).
    Resampling gives the pipeline exactly ``sfreq`` samples per second of source time.

    Delay and accuracy: an output sample needs the input sample after it, so the correction
    adds less than one sample period (< 3.9 ms at 256 Hz). Linear interpolation attenuates by
    ``|1 - f + f·e^{-jω}|`` at fractional position ``f``: at most ``cos(π·13/256)`` = 0.987 at
    13 Hz (−0.11 dB), 0.992 at 10 Hz, sweeping with ``f`` at the beat of the drift.

    A silence longer than :data:`BREAK_S` is a break, not a gap (no samples are invented for it;
    the pipeline reports "signal lost"); the rate fit starts again after it.

    Parameters
    ----------
    sfreq : float
        Nominal rate (Hz).
    settle_s : float
        Source-clock seconds before the rate is judged.
    tolerance : float
        Relative rate error beyond which the timeline is resampled.

    Attributes
    ----------
    dropped_samples : int
        Samples detected missing (input samples, at the stream's own rate).
    measured_sfreq : float or None
        The rate on the source clock (Hz), once two samples have arrived.
    ratio : float
        measured / nominal in use (1.0 while not correcting).
    corrected_from : int or None
        Output sample from which the timeline is resampled (None: not corrected).
    first_ts, last_ts : float or None
        Timestamps of the first and last sample that arrived.
    """

    def __init__(self, sfreq: float, settle_s: float = RATE_SETTLE_S, tolerance: float = DRIFT_TOLERANCE):
        self.sfreq = float(sfreq)
        self.settle_s = float(settle_s)
        self.tolerance = float(tolerance)
        self.reset()

    def reset(self) -> None:
        """Start a new stream (a restarted source invents no gap)."""
        self.n_in = 0  # input samples, gaps included
        self.n_out = 0
        self.dropped_samples = 0
        self.first_ts = self.last_ts = None
        self._sums = np.zeros(5)  # n, Σk, Σt, Σk², Σkt (k from _fit_k0, t from _fit_t0)
        self._fit_k0, self._fit_t0 = 0, None
        self.breaks = 0
        self.measured_sfreq = None
        self.ratio = 1.0
        self.corrected_from = None
        self._pos = 0.0  # next output sample's position in input samples
        self._prev = None  # (column, timestamp, gap) of the last input sample

    @property
    def drift_pct(self) -> float | None:
        """(measured / nominal - 1) in %, or None before a rate is measured."""
        return None if self.measured_sfreq is None else 100.0 * (self.measured_sfreq / self.sfreq - 1.0)

    def _fit(self, k: np.ndarray, t: np.ndarray) -> None:
        if self._fit_t0 is None:
            self._fit_k0, self._fit_t0 = int(k[0]), float(t[0])
        k, t = k - self._fit_k0, t - self._fit_t0
        s = self._sums
        s += (k.size, k.sum(), t.sum(), (k * k).sum(), (k * t).sum())
        n, sk, st, skk, skt = s
        var = skk - sk * sk / n
        if n >= self.sfreq and var > 0:  # a second of samples at least: a rate, not two stamps' jitter
            slope = (skt - sk * st / n) / var  # seconds per sample
            if slope > 0:
                self.measured_sfreq = 1.0 / slope

    def push(self, data: np.ndarray, ts: np.ndarray):
        """One pulled chunk in, the chunk for the pipeline out.

        Parameters
        ----------
        data : ndarray, shape (n_channels, n), µV
        ts : ndarray, shape (n,), s

        Returns
        -------
        data : ndarray, shape (n_channels, m), µV
            With NaN gap columns; at the nominal rate once corrected (m may differ from n).
        ts : ndarray, shape (m,), s
        gap : ndarray of bool, shape (m,), or None
        """
        ts = np.asarray(ts, dtype=np.float64)
        n = ts.size
        prev_ts = self.last_ts
        if self.first_ts is None:
            self.first_ts = float(ts[0])
        period = 1.0 / (self.measured_sfreq or self.sfreq)
        step = np.diff(ts, prepend=ts[0] if prev_ts is None else prev_ts)
        missing = np.where(step > GAP_PERIODS * period, np.rint(step / period) - 1, 0).astype(np.int64)
        brk = np.flatnonzero(np.abs(step) > BREAK_S)  # also a restarted streamer's clock stepping back
        if brk.size:  # a break: no gap samples for it; the rate is fitted afresh from the last one on
            self.breaks += brk.size
            missing[brk] = 0
        k = self.n_in + np.arange(n) + np.cumsum(missing)
        if brk.size:
            self._sums[:] = 0
            self._fit_t0 = None
            k_fit, t_fit = k[brk[-1]:], ts[brk[-1]:]
        else:
            k_fit, t_fit = k, ts
        self._fit(k_fit.astype(np.float64), t_fit)
        self.n_in = int(k[-1]) + 1
        self.last_ts = float(ts[-1])
        if missing.any():
            self.dropped_samples += int(missing.sum())
            data, ts, gap = insert_gaps(data, ts, missing, prev_ts)
        else:
            gap = None
        k0 = self.n_in - data.shape[1]  # input index of data[:, 0]
        if self.corrected_from is None and self.measured_sfreq is not None \
                and self.last_ts - self.first_ts >= self.settle_s \
                and abs(self.measured_sfreq / self.sfreq - 1.0) > self.tolerance:
            self.corrected_from = self.n_out
            self._pos = float(k0)  # the timelines agree at this chunk's first sample
        if self.corrected_from is None:
            self._prev = (data[:, -1].copy(), float(ts[-1]), bool(gap is not None and gap[-1]))
            self.n_out += data.shape[1]
            return data, ts, gap
        return self._resample(data, ts, gap, k0)

    def _resample(self, data, ts, gap, k0):
        self.ratio = self.measured_sfreq / self.sfreq
        m = data.shape[1]
        g = np.zeros(m, dtype=bool) if gap is None else gap
        if self._prev is None:  # corrected from the very first chunk: nothing before it
            self._prev = (data[:, 0].copy(), float(ts[0]), bool(g[0]))
        x = np.concatenate((self._prev[0][:, None], data), axis=1)  # input indices k0 - 1 .. k0 + m - 1
        t = np.concatenate(([self._prev[1]], ts))
        gg = np.concatenate(([self._prev[2]], g))
        self._prev = (data[:, -1].copy(), float(ts[-1]), bool(g[-1]))
        last = k0 + m - 1
        count = int(np.floor((last - self._pos) / self.ratio + 1e-9)) + 1 if self._pos <= last else 0
        rel = self._pos + self.ratio * np.arange(count) - (k0 - 1)
        self._pos += self.ratio * count
        j = np.floor(rel).astype(np.int64)
        f = rel - j
        j1 = np.minimum(j + 1, m)
        inside = f > 0
        # a weight of 0 must not let a NaN neighbour in (NaN * 0 is NaN)
        out = np.where(inside, x[:, j] * (1 - f) + x[:, j1] * f, x[:, j])
        ts_out = np.where(inside, t[j] * (1 - f) + t[j1] * f, t[j])
        gap_out = gg[j] | (inside & gg[j1])
        self.n_out += count
        return out, ts_out, (gap_out if gap_out.any() else None)

    def describe(self) -> dict:
        """What the sidecar records: the rate on the source clock, the drift, the correction."""
        return {"nominal_sfreq": self.sfreq, "measured_sfreq": self.measured_sfreq,
                "drift_pct": self.drift_pct, "dropped_samples": self.dropped_samples, "stream_breaks": self.breaks,
                "rate_correction": None if self.corrected_from is None else
                {"method": "resample", "ratio": self.ratio, "from_sample": self.corrected_from,
                 "tolerance_pct": 100 * self.tolerance}}


class LSLSource(Source):
    """Acquire from an LSL stream found by name or type.

    Timestamps are corrected into this host's LSL clock (``pylsl.local_clock``), the clock
    the chunk's ``age_s`` is measured on. Channel labels from the stream description are
    normalised to 10-10 names; samples in V, mV or nV (``unit`` in the description) are scaled to µV.

    Parameters
    ----------
    name, stype : str
        Stream name, or type if no name is given (default type "EEG").
    range_uv : float
        Amplifier range for railing and recording (unknown to LSL).
    timeout_s : float
        How long to look for the stream.
    line_hz : float
        Mains frequency (Hz).
    channel_map : dict, optional
        Stream channel label (normalised) -> 10-10 name, as ``--channel-map``.
    assume_uv : bool
        Take channels without a unit (or with one that is not a voltage) as µV (``--assume-uv``);
        by default such a stream is refused in one line (:func:`unit_scale`).

    Notes
    -----
    Gaps and rate come from the samples' timestamps (:class:`StampTimeline`): a step of more
    than 1.5 sample periods is a gap of NaN samples, as for a board's package counter
    (``dropped_samples``); the rate is measured on the source clock, and a drift beyond 0.1 %
    is corrected by resampling the timeline onto the nominal rate (``describe()`` reports it).
    LSL's TCP transport itself loses nothing while the inlet keeps up (``max_buflen`` = 30 s);
    the gaps it sees are the device's (lost BLE notifications).
    """

    def __init__(self, name=None, stype=None, range_uv=187500.0, timeout_s=5.0, line_hz=50.0, channel_map=None,
                 assume_uv=False):
        import pylsl

        self.info = resolve_stream(name, stype, timeout_s)
        self.sfreq = float(self.info.nominal_srate())
        if self.sfreq <= 0:
            raise SourceError(f"LSL stream {self.info.name()!r} has an irregular rate; EEG needs a nominal rate.")
        self.inlet = pylsl.StreamInlet(self.info, max_buflen=30, max_chunklen=0,
                                       processing_flags=pylsl.proc_clocksync)
        full = self.inlet.info(timeout=timeout_s)
        n = full.channel_count()
        labels, scale = [], []
        ch = full.desc().child("channels").child("channel")
        for _ in range(n):
            labels.append(ch.child_value("label") or "")
            scale.append(unit_scale(ch.child_value("unit"), labels[-1], self.info.name(), assume_uv))
            ch = ch.next_sibling()
        if not all(labels):
            labels = [f"EEG{i + 1}" for i in range(n)]
        self.ch_names = rename_channels(normalize_names(labels), channel_map, f"LSL stream {self.info.name()!r}")
        self.scale = np.asarray(scale)[:, None]
        self.range_uv = range_uv
        self.line_hz = line_hz
        self.name = f"lsl:{self.info.name()}"
        # pull_chunk copies raw bytes into dest_obj: its dtype must be the stream's own format
        dtype = {pylsl.cf_float32: np.float32, pylsl.cf_double64: np.float64, pylsl.cf_int32: np.int32,
                 pylsl.cf_int16: np.int16}.get(self.info.channel_format())
        if dtype is None:
            raise SourceError(f"LSL stream {self.info.name()!r} has a non-numeric channel format; EEG must be numeric.")
        self._buf = np.zeros((int(self.sfreq * 2) + 1, n), dtype=dtype)
        self.timeline = StampTimeline(self.sfreq)

    @property
    def dropped_samples(self) -> int:
        """Samples the timestamps show missing since start."""
        return self.timeline.dropped_samples

    def start(self):
        """Open the stream; a start after a stop begins a new timeline (no invented gap)."""
        self.timeline.reset()
        self.inlet.open_stream(timeout=5.0)

    def read(self) -> Chunk | None:
        import pylsl

        _, ts = self.inlet.pull_chunk(timeout=self.poll_s, max_samples=self._buf.shape[0], dest_obj=self._buf)
        if not ts:
            return None
        arrival = time.perf_counter_ns()
        n = len(ts)
        age = pylsl.local_clock() - ts[-1]
        first = self.timeline.n_out
        data, ts, gap = self.timeline.push(self._buf[:n].T.astype(np.float64) * self.scale, np.asarray(ts))
        if data.shape[1] == 0:  # resampling a 1-sample chunk onto a slower timeline
            return None
        return Chunk(data, ts, arrival, first, age, gap)

    def describe(self):
        d = super().describe()
        d.update(self.timeline.describe(), line_hz=self.line_hz)
        return d

    def stop(self):
        try:
            self.inlet.close_stream()
        except Exception:  # already gone
            pass


class MarkerInlet:
    """Non-blocking reader of an LSL marker stream (e.g. from PsychoPy) for external-marker mode."""

    def __init__(self, name: str, timeout_s: float = 5.0):
        import pylsl

        info = resolve_stream(name=name, timeout_s=timeout_s)
        self.inlet = pylsl.StreamInlet(info, processing_flags=pylsl.proc_clocksync)

    def pull(self) -> list[str]:
        """Markers received since the last call."""
        samples, _ = self.inlet.pull_chunk(timeout=0.0)
        return [str(s[0]) for s in samples]

    # markers with their timestamps, so a block starts where it was stamped
    def pull_stamped(self) -> list[tuple[str, float]]:
        """Markers received since the last call, with their LSL timestamps (this host's
        ``pylsl.local_clock``, clock-sync corrected)."""
        samples, ts = self.inlet.pull_chunk(timeout=0.0)
        return [(str(s[0]), float(t)) for s, t in zip(samples, ts)]
