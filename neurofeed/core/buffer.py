"""A preallocated ring buffer of the newest raw samples and their timestamps, for the views.

One thread writes (the acquisition thread, after publication); any number of threads read
the last ``n`` samples. A reader always gets a copy, made under the lock, in arrays it owns
(pass the same ``out``/``out_ts`` every time: one pair per reader, nothing allocated per read),
so a trace or a spectrum can never tear while the writer wraps around.

The ring is a window for views, not a queue: readers look at the newest samples and never
"consume" them, so no sample can be "missed" by a reader. Every sample is recorded by the
recorder, not here; ``n_written`` counts what went through.
"""

from __future__ import annotations

import threading

import numpy as np


class RingBuffer:
    """Fixed-size multichannel ring buffer of float64 samples and their timestamps.

    Parameters
    ----------
    n_channels : int
        Number of channels (rows).
    capacity : int
        Number of samples kept (the newest).
    """

    def __init__(self, n_channels: int, capacity: int):
        if int(capacity) <= 0:
            raise ValueError(f"The ring buffer capacity must be a strictly positive number. {capacity} is invalid.")
        if int(n_channels) <= 0:
            raise ValueError(f"The ring buffer needs at least one channel. {n_channels} is invalid.")
        self.n_channels = int(n_channels)
        self.capacity = int(capacity)
        self._data = np.zeros((self.n_channels, self.capacity))
        self._ts = np.full(self.capacity, np.nan)
        self._written = 0  # total samples ever written (monotonic)
        # held while the writer copies a chunk in and while a reader copies out: a chunk is a
        # few hundred values, so neither side waits more than microseconds
        self._lock = threading.Lock()

    @property
    def n_written(self) -> int:
        """Total samples written since creation."""
        return self._written

    def write(self, data: np.ndarray, timestamps: np.ndarray | None = None) -> None:
        """Append ``data`` (n_channels × n_samples, µV) and its ``timestamps`` (n_samples, s).

        Without timestamps the slots hold NaN. Only the newest ``capacity`` samples of an
        oversized chunk are kept (the count still advances by the whole chunk).
        """
        if data.ndim != 2 or data.shape[0] != self.n_channels:
            raise ValueError(f"Chunk has shape {data.shape}; the ring buffer holds {self.n_channels} channels "
                             f"(n_channels × n_samples).")
        n = data.shape[1]
        if timestamps is not None and len(timestamps) != n:
            raise ValueError(f"Chunk has {n} samples but {len(timestamps)} timestamps.")
        skipped = max(0, n - self.capacity)
        if skipped:
            data = data[:, skipped:]
            timestamps = None if timestamps is None else timestamps[skipped:]
            n = self.capacity
        with self._lock:
            start = (self._written + skipped) % self.capacity
            first = min(n, self.capacity - start)
            self._data[:, start:start + first] = data[:, :first]
            self._data[:, : n - first] = data[:, first:]
            if timestamps is None:
                self._ts[start:start + first] = np.nan
                self._ts[: n - first] = np.nan
            else:
                self._ts[start:start + first] = timestamps[:first]
                self._ts[: n - first] = timestamps[first:]
            self._written += n + skipped

    def read_last(self, n: int, out: np.ndarray | None = None, out_ts: np.ndarray | None = None):
        """Copy the last ``n`` samples (oldest first) into the caller's arrays.

        Parameters
        ----------
        n : int
            Samples wanted; fewer come back while the ring holds fewer.
        out : ndarray, shape (n_channels, >= n), float64, optional
            The reader's own array (reuse it between reads: nothing is allocated). A new one
            is made when omitted.
        out_ts : ndarray, shape (>= n,), float64, optional
            The reader's own timestamp array.

        Returns
        -------
        data : ndarray, shape (n_channels, m), µV
            ``out[:, :m]`` with ``m = min(n, samples written, capacity)``; never a view of the ring.
        ts : ndarray, shape (m,), s
            ``out_ts[:m]``: the samples' timestamps (NaN where none were given).
        """
        n = max(0, int(n))
        if out is None:
            out = np.empty((self.n_channels, min(n, self.capacity)))
        if out_ts is None:
            out_ts = np.empty(out.shape[1])
        if out.shape[0] != self.n_channels or out.shape[1] < min(n, self.capacity) or out_ts.shape[0] < out.shape[1]:
            raise ValueError(f"read_last({n}) needs out of shape ({self.n_channels}, >= {min(n, self.capacity)}) and "
                             f"out_ts as long; got {out.shape} and {out_ts.shape}.")
        with self._lock:
            m = min(n, self._written, self.capacity)
            self._copy_last(m, self._written, out, out_ts)
        return out[:, :m], out_ts[:m]

    def read_since(self, written: int, out: np.ndarray | None = None, out_ts: np.ndarray | None = None):
        """Copy the samples written after the first ``written`` (oldest first): what a reader
        that keeps its own state (a causal display filter) has not seen yet.

        Parameters
        ----------
        written : int
            The reader's count: ``total`` of its previous call (0 at first).
        out, out_ts : ndarray, optional
            As for :meth:`read_last`; at most ``out.shape[1]`` samples (the newest) are copied.

        Returns
        -------
        data : ndarray, shape (n_channels, m), µV
        ts : ndarray, shape (m,), s
        total : int
            Samples written up to the last one copied (pass it as ``written`` next time). When
            ``m < total - written`` the older unseen samples were overwritten (or did not fit
            ``out``): the reader missed them.
        """
        if out is None:
            out = np.empty((self.n_channels, self.capacity))
        if out_ts is None:
            out_ts = np.empty(out.shape[1])
        if out.shape[0] != self.n_channels or out_ts.shape[0] < out.shape[1]:
            raise ValueError(f"read_since needs out of shape ({self.n_channels}, m) and out_ts as long; "
                             f"got {out.shape} and {out_ts.shape}.")
        with self._lock:
            total = self._written
            m = max(0, min(total - int(written), self.capacity, out.shape[1]))
            self._copy_last(m, total, out, out_ts)
        return out[:, :m], out_ts[:m], total

    def _copy_last(self, m: int, total: int, out: np.ndarray, out_ts: np.ndarray) -> None:
        """Copy the last ``m`` of ``total`` written samples into ``out``/``out_ts`` (lock held)."""
        end = total % self.capacity
        start = end - m
        if start >= 0:
            out[:, :m] = self._data[:, start:end]
            out_ts[:m] = self._ts[start:end]
        else:
            head = -start  # samples at the end of the storage
            out[:, :head] = self._data[:, self.capacity - head:]
            out[:, head:m] = self._data[:, :end]
            out_ts[:head] = self._ts[self.capacity - head:]
            out_ts[head:m] = self._ts[:end]
