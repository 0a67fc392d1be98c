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
    """

    data: np.ndarray
    timestamps: np.ndarray
    arrival_ns: int
    first_sample: int = 0
    age_s: float = float("nan")

    @property
    def n_samples(self) -> int:
        """Number of samples in the chunk."""
        return self.data.shape[1]
