"""Recorded files (EDF/EDF+/BDF/BDF+/FIF through MNE) as a chunk source."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..channels import normalize_names
from ..chunk import Chunk
from ..errors import SourceError
from .base import Source, rename_channels

if TYPE_CHECKING:  # MNE is imported where a file is read (it costs ~1 s at start-up)
    import mne

SUPPORTED = (".edf", ".bdf", ".fif", ".fif.gz")


def read_raw(path) -> "mne.io.BaseRaw":
    """Read an EDF/BDF/FIF file with MNE, EEG channels only, names normalised to 10-10.

    Raises :class:`SourceError` (one line naming the file) for a missing, empty, truncated
    or corrupt file.
    """
    import mne

    path = Path(path)
    if not path.exists():
        raise SourceError(f"{path}: no such file.")
    if not str(path).lower().endswith(SUPPORTED):
        raise SourceError(f"{path}: unsupported file type; expected one of {', '.join(SUPPORTED)}.")
    if path.stat().st_size == 0:
        raise SourceError(f"{path}: the file is empty.")
    try:
        raw = mne.io.read_raw(path, preload=True, verbose="error")
    except Exception as err:  # MNE raises many types for corrupt headers
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SourceError(f"{path}: cannot read as {path.suffix[1:].upper()}: {msg}") from None
    if raw.n_times == 0:
        raise SourceError(f"{path}: the file holds no samples.")
    picks = [i for i, t in enumerate(raw.get_channel_types()) if t in ("eeg", "misc", "emg", "eog")]
    raw.pick(picks)
    mapping = dict(zip(raw.ch_names, normalize_names(raw.ch_names)))
    if len(set(mapping.values())) == len(mapping):
        raw.rename_channels(mapping)
    return raw


class FileSource(Source):
    """Replay a recorded file in live-sized chunks, at real time or as fast as possible.

    Parameters
    ----------
    path : str or Path
    chunk_size : int, optional
        Samples per chunk; default ``round(0.04 * sfreq)`` (10 at 250 Hz, as live).
    realtime : bool
        Pace chunks at the recording's rate (True) or hand them over at once (False).
    range_uv : float, optional
        Amplifier range; default the largest physical range in the file.
    channel_map : dict, optional
        File channel name (normalised) -> 10-10 name, as ``--channel-map``.
    """

    def __init__(self, path, chunk_size=None, realtime=False, range_uv=None, channel_map=None):
        self.path = Path(path)
        raw = read_raw(self.path)
        self.sfreq = float(raw.info["sfreq"])
        self.ch_names = rename_channels(raw.ch_names, channel_map, f"file {self.path.name}")
        self.data = np.ascontiguousarray(raw.get_data() * 1e6)  # V -> µV
        self.annotations = [(float(a["onset"]), float(a["duration"]), str(a["description"]))
                            for a in raw.annotations]
        self.chunk_size = int(chunk_size or max(1, round(0.04 * self.sfreq)))
        self.realtime = realtime
        self.range_uv = float(range_uv or max(1.0, float(np.nanmax(np.abs(self.data))) * 1.05))
        self.name = f"file:{self.path.name}"
        self._pos = 0
        self._t0_ns = None
        self.finished = False

    def start(self):
        self._t0_ns = time.perf_counter_ns()

    def read(self) -> Chunk | None:
        if self._t0_ns is None:
            self.start()
        n_total = self.data.shape[1]
        if self._pos >= n_total:
            self.finished = True
            if self.realtime:
                self.nap(0.001)
            return None
        n = min(self.chunk_size, n_total - self._pos)
        if self.realtime:
            due = self._t0_ns + int((self._pos + n) * 1e9 / self.sfreq)
            if time.perf_counter_ns() < due:
                self.nap(max(0.0, (due - time.perf_counter_ns()) / 1e9))
                return None
        start = self._pos
        self._pos += n
        data = self.data[:, start:self._pos]
        ts = (start + np.arange(n)) / self.sfreq
        return Chunk(data, ts, time.perf_counter_ns(), start)
