"""An LSL inlet (pylsl) as a chunk source, and an LSL marker inlet."""

from __future__ import annotations

import time

import numpy as np

from ..channels import normalize_names
from ..chunk import Chunk
from ..errors import SourceError
from .base import Source, rename_channels

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
    LSL carries no sample counter: samples the outlet never sent cannot be told apart from
    jitter in the timestamps, so no gap samples are inserted (LSL's TCP transport itself loses
    nothing while the inlet keeps up; its buffer holds ``max_buflen`` = 30 s).
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
        self._n = 0

    def start(self):
        self.inlet.open_stream(timeout=5.0)

    def read(self) -> Chunk | None:
        import pylsl

        _, ts = self.inlet.pull_chunk(timeout=self.poll_s, max_samples=self._buf.shape[0], dest_obj=self._buf)
        if not ts:
            return None
        arrival = time.perf_counter_ns()
        n = len(ts)
        data = self._buf[:n].T.astype(np.float64) * self.scale
        ts = np.asarray(ts)
        chunk = Chunk(data, ts, arrival, self._n, pylsl.local_clock() - ts[-1])
        self._n += n
        return chunk

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
