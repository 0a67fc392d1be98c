"""A preallocated ring buffer: one writer thread, one reader thread."""

from __future__ import annotations

import threading

import numpy as np


class RingBuffer:
    """Fixed-size multichannel ring buffer of float64 samples.

    One thread writes (the acquisition thread), another reads (the display). Writes wrap
    around; nothing is allocated per chunk. ``read_last(n)`` returns a view when the last
    ``n`` samples are contiguous in memory and otherwise a copy into a preallocated scratch
    array (valid until the next read).

    Parameters
    ----------
    n_channels : int
        Number of channels (rows).
    capacity : int
        Number of samples kept.
    """

    def __init__(self, n_channels: int, capacity: int):
        if int(capacity) <= 0:
            raise ValueError(f"The ring buffer capacity must be a strictly positive number. {capacity} is invalid.")
        if int(n_channels) <= 0:
            raise ValueError(f"The ring buffer needs at least one channel. {n_channels} is invalid.")
        self.n_channels = int(n_channels)
        self.capacity = int(capacity)
        self._data = np.zeros((self.n_channels, self.capacity))
        self._scratch = np.zeros((self.n_channels, self.capacity))
        self._written = 0  # total samples ever written (monotonic)
        self._read = 0  # total samples handed to the reader by read_new
        self.overflow = 0  # samples the reader never saw because the writer lapped it
        self._lock = threading.Lock()  # guards the counters only, held for nanoseconds

    @property
    def n_written(self) -> int:
        """Total samples written since creation."""
        return self._written

    def write(self, chunk: np.ndarray) -> None:
        """Append ``chunk`` (n_channels × n_samples), wrapping around at the end."""
        n = chunk.shape[1]
        if chunk.shape[0] != self.n_channels:
            raise ValueError(f"Chunk has {chunk.shape[0]} channels; the ring buffer holds {self.n_channels}.")
        if n >= self.capacity:  # only the newest `capacity` samples can be kept
            chunk = chunk[:, n - self.capacity:]
            skipped, n = n - self.capacity, self.capacity
        else:
            skipped = 0
        start = (self._written + skipped) % self.capacity
        first = min(n, self.capacity - start)
        self._data[:, start:start + first] = chunk[:, :first]
        if first < n:
            self._data[:, : n - first] = chunk[:, first:]
        with self._lock:
            self._written += n + skipped
            unread = self._written - self._read
            if unread > self.capacity:
                self.overflow += unread - self.capacity
                self._read = self._written - self.capacity

    def read_last(self, n: int) -> np.ndarray:
        """The last ``n`` samples (n_channels × n), oldest first.

        A view into the buffer when contiguous, otherwise a copy in a reused scratch array.
        """
        with self._lock:
            written = self._written
        n = int(min(n, written, self.capacity))
        end = written % self.capacity or (self.capacity if written else 0)
        start = end - n
        if start >= 0:
            return self._data[:, start:end]
        head = -start  # samples at the end of the storage
        out = self._scratch[:, :n]
        out[:, :head] = self._data[:, self.capacity - head:]
        out[:, head:] = self._data[:, :end]
        return out

    def read_new(self) -> np.ndarray:
        """Samples written since the previous ``read_new`` (at most ``capacity``)."""
        with self._lock:
            n = self._written - self._read
            self._read = self._written
        return self.read_last(n)
