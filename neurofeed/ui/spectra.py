"""Console spectra and per-channel line noise, computed off the GUI and acquisition threads."""

from __future__ import annotations

import threading

import numpy as np

from ..dsp.spectra import welch_psd


class SpectrumWorker:
    """Every ``interval_s`` reads the last 2 s of raw data from the ring buffer and publishes
    the Welch spectrum (µV²/Hz) of the target channels and the per-channel mains RMS (µV).

    A thread of its own, so that neither the GUI frame loop nor the per-chunk DSP pays for it.
    """

    def __init__(self, pipeline, interval_s: float = 0.5, window_s: float = 2.0):
        self.pipeline = pipeline
        self.interval_s = interval_s
        src = pipeline.source
        self.sfreq = src.sfreq
        self.n = int(window_s * self.sfreq)
        names = list(src.ch_names)
        self.target_rows = [names.index(t) for t in pipeline.processor.chain.targets]
        self.line_hz = getattr(src, "line_hz", 50.0)
        self.freqs = np.zeros(0)
        self.psd = np.zeros((len(self.target_rows), 0))
        self.line_rms_uv = np.zeros(len(names))
        self.rms_uv = np.zeros(len(names))
        self.version = 0  # incremented on each new spectrum: the console redraws the plot only then
        self._x = np.empty((len(names), self.n))  # this reader's own copy of the ring (one pair per reader)
        self._ts = np.empty(self.n)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def compute(self) -> None:
        """One update (also usable synchronously, e.g. for screenshots)."""
        x, _ = self.pipeline.ring.read_last(self.n, out=self._x, out_ts=self._ts)  # copied into our arrays
        if x.shape[1] < self.sfreq / 2:
            return
        x = np.nan_to_num(x - np.nanmean(x, axis=1, keepdims=True))  # gap samples (NaN) count as 0
        f, p = welch_psd(x, self.sfreq, segment_s=1.0)
        self.freqs, self.psd = f, p[self.target_rows]
        line = (f >= self.line_hz - 1.5) & (f <= self.line_hz + 1.5)
        df = f[1] - f[0]
        self.line_rms_uv = np.sqrt(p[:, line].sum(axis=1) * df) if line.any() else np.zeros(x.shape[0])
        self.rms_uv = x.std(axis=1)
        self.version += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.compute()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="neurofeed-spectra", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
