"""The per-chunk DSP chain: quality → spatial filter → mu power estimator."""

from __future__ import annotations

import numpy as np

from ..channels import blink_channels, laplacian_neighbours
from .estimators import Estimator, make_estimator
from .kernels import spatial_apply
from .quality import QualityConfig, QualityMonitor
from .spatial import spatial_weights


class MuChain:
    """Quality monitoring, spatial filtering and mu power estimation for one montage.

    Parameters
    ----------
    sfreq : float
        Sampling rate in Hz.
    ch_names : list of str
        The montage (10-10 names), in row order.
    targets : list of str
        Channels whose mu power is estimated (e.g. ``["C3", "C4"]``).
    reference : str
        Spatial reference (see :func:`neurofeed.dsp.spatial.spatial_weights`).
    band_hz : (float, float)
        Mu band in Hz.
    estimator : str
        ``"wcfir"`` (default), ``"cfir"``, ``"iir"`` or ``"window"``.
    delay_s : float
        Designed delay for the cFIR estimator.
    smoothing_s : float or None
        Power smoothing time constant (estimator default if None).
    line_hz : float
        Mains frequency (50 or 60 Hz).
    quality : QualityConfig
    bipolar_pairs, matrix :
        Passed to :func:`spatial_weights`.
    """

    def __init__(self, sfreq, ch_names, targets, reference="raw", band_hz=(8.0, 13.0), estimator="wcfir",
                 delay_s=0.05, smoothing_s=None, line_hz=50.0, quality: QualityConfig | None = None,
                 bipolar_pairs=None, matrix=None):
        self.sfreq = float(sfreq)
        self.ch_names = list(ch_names)
        self.targets = list(targets)
        self.reference = reference
        self.estimator_name = estimator
        self.delay_s = delay_s
        self.smoothing_s = smoothing_s
        self.line_hz = line_hz
        self.bipolar_pairs, self.matrix = bipolar_pairs, matrix
        self.weights = np.ascontiguousarray(
            spatial_weights(self.ch_names, self.targets, reference, bipolar_pairs, matrix))
        index = {n: i for i, n in enumerate(self.ch_names)}
        feeding = sorted(set(np.nonzero(np.abs(self.weights).sum(axis=0))[0].tolist()))
        emg_rows = sorted({index[t] for t in self.targets} | {
            index[n] for t in self.targets for n in laplacian_neighbours(t, self.ch_names)})
        blink_rows = [index[n] for n in blink_channels(self.ch_names)]
        self.quality = QualityMonitor(self.sfreq, len(self.ch_names), emg_rows, blink_rows, feeding,
                                      quality or QualityConfig())
        self.estimator: Estimator = self._make_estimator(band_hz)
        self._raw = np.zeros((len(self.ch_names), 64))
        self._out = np.zeros((len(self.targets), 64))
        self.last_power = np.zeros(len(self.targets))
        self.gated = False
        self.keep_spatial = False  # set while a baseline is captured for a refit
        self.kept: list[np.ndarray] = []

    def _make_estimator(self, band_hz) -> Estimator:
        return make_estimator(self.estimator_name, self.sfreq, band_hz, len(self.targets), self.delay_s,
                              self.smoothing_s, self.line_hz)

    @property
    def band_hz(self):
        """The mu band in use (Hz)."""
        return self.estimator.band_hz

    @property
    def needs_baseline_fit(self) -> bool:
        """True if the estimator is fitted to the baseline (weighted cFIR)."""
        return getattr(self.estimator, "needs_fit", False)

    def retune(self, band_hz, baseline: np.ndarray | None = None) -> None:
        """A fresh estimator for ``band_hz``, fitted to ``baseline`` (targets × samples) if it
        is a fitted kind; its state starts from zero."""
        self.estimator = self._make_estimator(band_hz)
        if baseline is not None and getattr(self.estimator, "needs_fit", False):
            self.estimator.fit(baseline)

    # --- engine helper: a stand-in until the dsp helper's set_bad_channels lands ---
    def set_bad_channels(self, names) -> None:
        """Recompute the spatial weights without the channels ``names`` (their columns get zero
        weight; the Laplacian uses the remaining neighbours, the average the remaining channels).
        Raises NeurofeedError if the reference cannot do without them."""
        bad = set(names)
        keep = [n for n in self.ch_names if n not in bad]
        w_keep = spatial_weights(keep, self.targets, self.reference, self.bipolar_pairs, self.matrix)
        w = np.zeros((len(self.targets), len(self.ch_names)))
        w[:, [self.ch_names.index(n) for n in keep]] = w_keep
        self.weights[:] = w

    def spatial(self, data: np.ndarray) -> np.ndarray:
        """The referenced target signals (n_targets × n_samples) of raw ``data``, a new array."""
        clean = np.nan_to_num(np.asarray(data, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        return self.weights @ clean

    def process(self, data: np.ndarray) -> np.ndarray:
        """Process one chunk of raw EEG (n_channels × n_samples, µV).

        Returns the mu power per target and sample (µV², a view valid until the next call).
        ``self.gated`` tells whether the artifact gate is on, ``self.quality.flags`` the
        per-channel flags. ``data`` is not modified.
        """
        n = data.shape[1]
        if self._raw.shape[1] < n:  # grows once to the largest chunk seen, then reused
            self._raw = np.zeros((self._raw.shape[0], n))
            self._out = np.zeros((self._out.shape[0], n))
        raw = self._raw[:, :n]
        self.gated = self.quality.process(data, raw)  # raw: data with non-finite samples set to 0
        out = self._out[:, :n]
        spatial_apply(self.weights, raw, out)
        if self.keep_spatial:  # the referenced signal, before the estimator overwrites it
            self.kept.append(out.copy())
        self.estimator.process_inplace(out)
        self.last_power[:] = out[:, n - 1]
        return out
