"""The unit of data that flows from a source through the pipeline."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(slots=True)
class Chunk:
    """What a source hands over at once.

    Attributes
    ----------
    data : ndarray, shape (n_channels, n_samples), float64
        EEG in µV.
    timestamps : ndarray, shape (n_samples,), float64
        Sample times in seconds on the host's ``time.time()``-like clock of the source
        (BrainFlow and LSL timestamps mapped to the host; file sources: seconds from start).
    arrival_ns : int
        Host arrival time, ``time.perf_counter_ns()`` when the chunk was received; every
        downstream latency is measured from it.
    first_sample : int
        Index of the chunk's first sample since the source started (counts dropped samples).
    age_s : float
        Seconds between the newest sample's timestamp and the arrival, where the source can
        tell (NaN otherwise).
    gap : ndarray, shape (n_samples,), bool, or None
        True on gap samples: columns of NaN the source inserted where samples were lost
        (package-counter gaps), with interpolated timestamps, so that ``first_sample +
        n_samples`` stays the true sample count. None when the chunk has no gap.
    """

    data: np.ndarray
    timestamps: np.ndarray
    arrival_ns: int
    first_sample: int = 0
    age_s: float = float("nan")
    gap: np.ndarray | None = None

    @property
    def n_samples(self) -> int:
        """Number of samples in the chunk."""
        return self.data.shape[1]


def insert_gaps(data: np.ndarray, timestamps: np.ndarray, missing: np.ndarray, prev_ts: float | None = None):
    """Insert gap samples (NaN columns) where samples were lost.

    Parameters
    ----------
    data : ndarray, shape (n_channels, n), µV
        The samples that arrived.
    timestamps : ndarray, shape (n,), s
    missing : ndarray, shape (n,), int
        Samples lost just before each arrived sample.
    prev_ts : float, optional
        Timestamp of the sample before ``data[:, 0]`` (previous chunk), to interpolate gaps
        that open the chunk; without it they take the first arrived sample's timestamp.

    Returns
    -------
    data : ndarray, shape (n_channels, n + missing.sum()), µV
        NaN on gap columns.
    timestamps : ndarray, shape (n + missing.sum(),), s
        Linearly interpolated across each gap.
    gap : ndarray of bool, shape (n + missing.sum(),)
    """
    missing = np.asarray(missing, dtype=np.int64)
    n_gap = int(missing.sum())
    if n_gap == 0:
        return data, timestamps, None
    n = data.shape[1]
    pos = np.arange(n) + np.cumsum(missing)  # where each arrived sample lands
    out = np.full((data.shape[0], n + n_gap), np.nan)
    out[:, pos] = data
    gap = np.ones(n + n_gap, dtype=bool)
    gap[pos] = False
    xp, fp = pos, np.asarray(timestamps, dtype=np.float64)
    if prev_ts is not None and missing[0] > 0:
        xp, fp = np.concatenate(([-1], xp)), np.concatenate(([prev_ts], fp))
    ts = np.interp(np.arange(n + n_gap), xp, fp)
    return out, ts, gap
