"""A learned, causal mu-envelope estimator: a small temporal convolutional network (TCN).

After Semenkov, Fedosov, Makarov & Ossadtchi (J. Neural Eng. 20:056008, 2023): a stack of
causal dilated convolutions reads the conditioned, referenced signal and outputs the band's
analytic signal (real and imaginary part) as it was ``design_delay_s`` ago; the power is
``|y|² / 2`` (µV², as every estimator in :mod:`neurofeed.dsp.estimators`).

Network (per target channel, weights shared across channels)::

    h1   = relu(conv_k3_d1(x))                       1 -> C channels
    h_l  = h_{l-1} + relu(conv_k3_dl(h_{l-1}))       C -> C, dilations 2, 4, ... 64
    y    = W_out @ h_L                               C -> 2 (re, im)

No biases anywhere, so the network is positively homogeneous: scaling the input by ``a > 0``
scales ``y`` by ``a`` (power by ``a²``). That is what makes one set of weights serve any
electrode gain or person without an input normaliser; the log-power correlation the project
scores does not depend on the scale either.

The weights are trained offline (``benchmarks/learned/train.py``, torch, the ``[train]`` extra)
on simulated bursty rhythms and EEGMMIDB S001 R01/R02, one set per sampling rate (the network's
dilations are in samples, so a set is only valid at the rate it was trained at: 125, 160, 200,
250 and 256 Hz are shipped, each with design delays 0 and, at 125/160/250 Hz, −20 ms), and
shipped in ``neurofeed/dsp/weights/mu_tcn.npz``. Run time is numpy + one numba kernel (no torch).
Any other rate is refused with one line naming the rates there are.

Delay: measured like every estimator (:meth:`Estimator.measure_step_delay_s`), the design delay
is only the target's shift in training; the effective delay on real EEG is in
``benchmarks/RESULTS.md`` ("Learned estimator").
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
from numba import njit
from scipy import signal

from ..core.errors import NeurofeedError
from .estimator_base import Estimator
from .filters import SOSFilter, one_pole_alpha

__all__ = ["LearnedEnvelope", "load_weights", "shipped_designs", "WEIGHTS_PATH"]

WEIGHTS_PATH = Path(__file__).resolve().parent / "weights" / "mu_tcn.npz"


@lru_cache(maxsize=4)
def load_weights(path: str | None = None) -> dict:
    """The shipped networks: ``{(sfreq, design_delay_ms): {"w0", "w", "w_out", "dilations", ...}}``.

    The file holds, per network ``k``, arrays ``k{k}_w0`` (C, 3), ``k{k}_w`` (L-1, C, 3, C),
    ``k{k}_w_out`` (2, C), ``k{k}_dilations`` (L,) and a JSON ``meta`` listing each network's
    sampling rate, design delay and band.
    """
    p = Path(path) if path else WEIGHTS_PATH
    if not p.exists():
        raise NeurofeedError(f"{p}: the learned estimator's weights are missing; reinstall neurofeed "
                             f"(they ship as package data) or train them with benchmarks/learned/train.py.")
    with np.load(p, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        nets = {}
        for k, m in enumerate(meta["networks"]):
            key = (float(m["sfreq"]), int(round(m["design_delay_ms"])))
            nets[key] = {"w0": np.ascontiguousarray(z[f"k{k}_w0"], dtype=np.float64),
                         "w": np.ascontiguousarray(z[f"k{k}_w"], dtype=np.float64),
                         "w_out": np.ascontiguousarray(z[f"k{k}_w_out"], dtype=np.float64),
                         "dilations": np.ascontiguousarray(z[f"k{k}_dilations"], dtype=np.int64),
                         "meta": m}
    return nets


def shipped_designs(sfreq: float | None = None, path: str | None = None) -> list[tuple[float, int]]:
    """``(sfreq, design_delay_ms)`` of every shipped network (at ``sfreq`` only, if given)."""
    keys = sorted(load_weights(None if path is None else str(path)))
    return [k for k in keys if sfreq is None or abs(k[0] - sfreq) < 1e-6]


@njit(cache=True, fastmath=True)
def tcn_power_inplace(x, w0, w, w_out, dil, hist0, hist, pos, alpha, pstate, h, tmp):
    """Run the TCN sample by sample over ``x`` in place: the power ``(re² + im²) / 2``.

    Parameters
    ----------
    x : ndarray, shape (n_channels, n_samples)
        Input in µV, overwritten by the (optionally smoothed) power in µV².
    w0 : ndarray, shape (C, 3)
        First layer (one input channel); tap 2 is the newest sample, tap 0 the oldest.
    w : ndarray, shape (L - 1, C, 3, C)
        Residual layers ``[layer, out, tap, in]`` (the input channels innermost, contiguous).
    w_out : ndarray, shape (n_channels, 2, C)
        Read-out per channel (shared weights, or refitted per channel).
    dil : ndarray of int64, shape (L,)
        Dilation of each layer.
    hist0 : ndarray, shape (n_channels, R)
        Ring buffer of the input, ``R = 2 * max(dil) + 1``.
    hist : ndarray, shape (n_channels, L - 1, R, C)
        Ring buffer of each residual layer's input.
    pos : ndarray of int64, shape (n_channels,)
        Ring write position per channel, updated in place.
    alpha : float
        One-pole smoothing of the power, 1.0 for none.
    pstate : ndarray, shape (n_channels,)
        Smoother state.
    h, tmp : ndarray, shape (C,)
        Scratch.
    """
    n_ch, n = x.shape
    n_res = w.shape[0]
    c_hid = w0.shape[0]
    ring = hist0.shape[1]
    for c in range(n_ch):
        p = pos[c]
        ps = pstate[c]
        for t in range(n):
            hist0[c, p] = x[c, t]
            d = dil[0]
            i1 = (p - d) % ring
            i2 = (p - 2 * d) % ring
            v0, v1, v2 = hist0[c, i2], hist0[c, i1], hist0[c, p]
            for o in range(c_hid):
                s = w0[o, 0] * v0 + w0[o, 1] * v1 + w0[o, 2] * v2
                h[o] = s if s > 0.0 else 0.0
            for layer in range(n_res):
                for i in range(c_hid):
                    hist[c, layer, p, i] = h[i]
                d = dil[layer + 1]
                i1 = (p - d) % ring
                i2 = (p - 2 * d) % ring
                for o in range(c_hid):
                    s = 0.0
                    for i in range(c_hid):
                        s += (w[layer, o, 0, i] * hist[c, layer, i2, i] + w[layer, o, 1, i] * hist[c, layer, i1, i]
                              + w[layer, o, 2, i] * h[i])
                    tmp[o] = h[o] + (s if s > 0.0 else 0.0)
                for o in range(c_hid):
                    h[o] = tmp[o]
            re = 0.0
            im = 0.0
            for i in range(c_hid):
                re += w_out[c, 0, i] * h[i]
                im += w_out[c, 1, i] * h[i]
            ps += alpha * (0.5 * (re * re + im * im) - ps)
            x[c, t] = ps
            p += 1
            if p == ring:
                p = 0
        pos[c] = p
        pstate[c] = ps
    return x


def reference_features(x: np.ndarray, w0: np.ndarray, w: np.ndarray, dilations) -> np.ndarray:
    """The last hidden layer ``h_L`` for a whole signal at once (numpy, vectorised over time),
    from zero history: the reference the streaming kernel is tested against, and what the
    baseline read-out fit uses.

    Parameters
    ----------
    x : ndarray, shape (n_samples,)

    Returns
    -------
    h : ndarray, shape (C, n_samples)
    """
    x = np.asarray(x, dtype=float)
    n = x.size

    def shifted(a, k):  # a[..., t - k] with zeros before the start
        if k == 0:
            return a
        out = np.zeros_like(a)
        out[..., k:] = a[..., :n - k]
        return out

    d = int(dilations[0])
    h = np.maximum(0.0, w0[:, 0:1] * shifted(x, 2 * d)[None] + w0[:, 1:2] * shifted(x, d)[None]
                   + w0[:, 2:3] * x[None])
    for layer in range(w.shape[0]):
        d = int(dilations[layer + 1])
        s = (w[layer, :, 0, :] @ shifted(h, 2 * d) + w[layer, :, 1, :] @ shifted(h, d) + w[layer, :, 2, :] @ h)
        h = h + np.maximum(0.0, s)
    return h


def analytic_truth(x: np.ndarray, sfreq: float, band_hz) -> np.ndarray:
    """The non-causal truth as a complex analytic signal: the brick-wall band-pass of
    :func:`neurofeed.dsp.accuracy.ideal_envelope` before its magnitude is taken."""
    x = np.asarray(x, dtype=float)
    f = np.fft.fftfreq(x.shape[-1], 1 / sfreq)
    spec = np.fft.fft(x, axis=-1)
    spec[..., (np.abs(f) < band_hz[0]) | (np.abs(f) > band_hz[1]) | (f < 0)] = 0
    spec[..., f > 0] *= 2
    return np.fft.ifft(spec, axis=-1)


#: Corner of the input low-pass ahead of the network (Hz; 2nd-order Butterworth, causal). The
#: network's own rejection of the mains band is ~20 dB (trained on broadband input); the chain's
#: response check asks 25 dB at the line frequency ± 2 Hz and its harmonics. This low-pass adds
#: 5–12 dB there (and more at the harmonics) for ~5.6 ms of group delay in the mu band.
PREFILTER_HZ = 40.0
PREFILTER_ORDER = 2


class LearnedEnvelope(Estimator):
    """Causal input low-pass → TCN analytic-signal estimator → ``|y|²/2`` → optional one-pole smoothing.

    Group delay: measured (:meth:`measure_step_delay_s`), like the cFIR's. Its memory (the
    receptive field, :meth:`memory_s`) is ``1 + 2 * sum(dilations)`` samples (255: 1.02 s at
    250 Hz, 1.6 s at 160 Hz, 2.0 s at 125 Hz).

    Parameters
    ----------
    sfreq, band_hz, n_channels
        ``band_hz`` must be the band the network was trained for (8–13 Hz).
    delay_s : float
        Wanted design delay (s); the shipped network at ``sfreq`` with the nearest design delay
        is used (:attr:`design_delay_s` says which).
    smoothing_s : float
        Time constant of the power smoother (0: none).
    fit_readout : bool
        If True, :meth:`fit` refits the read-out layer per channel to the baseline
        (ridge regression towards the shipped read-out); if False (default) the shipped
        network is used as is and :meth:`fit` does nothing.
    weights_path : str, optional
        Another weights file (default: the shipped one).

    Raises
    ------
    NeurofeedError
        If no network was trained at ``sfreq`` or for ``band_hz``.
    """

    name = "learned"

    def __init__(self, sfreq, band_hz, n_channels, delay_s=0.0, smoothing_s=0.0, fit_readout=False,
                 weights_path=None):
        super().__init__(sfreq, band_hz, n_channels)

        nets = load_weights(None if weights_path is None else str(weights_path))
        here = [k for k in nets if abs(k[0] - self.sfreq) < 1e-6]
        if not here:
            rates = ", ".join(f"{r:g}" for r in sorted({k[0] for k in nets}))
            raise NeurofeedError(f"[signal] estimator = \"learned\" has no network trained at {self.sfreq:g} Hz "
                                 f"(trained at {rates} Hz); use estimator = \"wcfir\" on this board, or train one "
                                 f"with benchmarks/learned/train.py --sfreq {self.sfreq:g}.")
        key = min(here, key=lambda k: (abs(k[1] - 1000.0 * float(delay_s)), k[1]))
        net = nets[key]
        band = tuple(float(b) for b in net["meta"]["band_hz"])
        if max(abs(band[0] - self.band_hz[0]), abs(band[1] - self.band_hz[1])) > 1e-6:
            raise NeurofeedError(f"[signal] estimator = \"learned\" was trained for {band[0]:g}-{band[1]:g} Hz, "
                                 f"not {self.band_hz[0]:g}-{self.band_hz[1]:g} Hz; use band_hz = "
                                 f"[{band[0]:g}, {band[1]:g}] or estimator = \"wcfir\".")
        self.weights_name = Path(weights_path).name if weights_path else WEIGHTS_PATH.name
        self.design_delay_s = key[1] / 1000.0
        self.delay_s = self.design_delay_s
        self.meta = net["meta"]
        self.w0, self.w, self.dilations = net["w0"], net["w"], net["dilations"]
        self.w_out_shipped = net["w_out"]
        self.w_out = np.array(np.broadcast_to(net["w_out"], (self.n_channels,) + net["w_out"].shape))  # own copy (fit writes it)
        self.n_hidden = self.w0.shape[0]
        self.ring = 2 * int(self.dilations.max()) + 1
        self.receptive_field = 1 + 2 * int(self.dilations.sum())
        self.receptive_field_s = self.receptive_field / self.sfreq
        self.alpha = one_pole_alpha(smoothing_s, self.sfreq)
        self.fit_readout = bool(fit_readout)
        self.needs_fit = self.fit_readout
        self.fitted = False
        self.hist0 = np.zeros((self.n_channels, self.ring))
        self.hist = np.zeros((self.n_channels, self.w.shape[0], self.ring, self.n_hidden))
        self.pos = np.zeros(self.n_channels, dtype=np.int64)
        self.pstate = np.zeros(self.n_channels)
        self._h = np.zeros(self.n_hidden)
        self._tmp = np.zeros(self.n_hidden)
        self.seeded = False
        self._delay_s = None
        # the input low-pass (PREFILTER_HZ), where it lies below 0.9 × Nyquist
        corner = min(PREFILTER_HZ, 0.45 * self.sfreq)
        self.prefilter_sos = signal.butter(PREFILTER_ORDER, corner, btype="lowpass", fs=self.sfreq, output="sos")
        self.prefilter = SOSFilter(self.prefilter_sos, self.n_channels, seed_first=True)

    def reset(self) -> None:
        for a in (self.hist0, self.hist, self.pos, self.pstate):
            a[...] = 0
        self.prefilter.reset()
        self.seeded = False

    def seed(self, x0) -> None:
        """Fill every layer's history with its steady state for a constant input ``x0`` (n_channels,)."""
        x0 = np.asarray(x0, dtype=float)
        self.prefilter.seed(x0)  # unit gain at DC: the low-pass's steady state for x0 is x0
        for c in range(self.n_channels):
            h = np.maximum(0.0, self.w0.sum(axis=1) * x0[c])
            self.hist0[c] = x0[c]
            for layer in range(self.w.shape[0]):
                self.hist[c, layer] = h[None]
                h = h + np.maximum(0.0, self.w[layer].sum(axis=1) @ h)
            self.pstate[c] = 0.5 * float(np.sum((self.w_out[c] @ h) ** 2))
        self.seeded = True

    def fit(self, x: np.ndarray, ridge: float = 1.0) -> None:
        """Refit the read-out per channel to the baseline ``x`` (n_channels × n_samples) if
        ``fit_readout``: least squares of the network's last layer onto the baseline's own
        non-causal analytic signal shifted by the design delay, with a ridge penalty
        ``ridge * mean(diag(H Hᵀ))`` towards the shipped read-out. The first receptive field
        and 0.5 s at each end (the truth's edges) are left out."""
        if not self.fit_readout:
            return
        x = np.atleast_2d(np.asarray(x, dtype=float))
        shift = int(round(self.design_delay_s * self.sfreq))
        edge = int(round(0.5 * self.sfreq))
        w_out = self.w_out.copy()
        for c, row in enumerate(x):
            a = analytic_truth(row, self.sfreq, self.band_hz)
            h = reference_features(signal.sosfilt(self.prefilter_sos, row), self.w0, self.w, self.dilations)
            t = np.arange(max(self.receptive_field, edge + max(shift, 0)), row.size - edge + min(shift, 0))
            if t.size < 2 * self.n_hidden:
                continue  # too short a baseline: keep the shipped read-out
            hh = h[:, t]
            y = np.stack([a[t - shift].real, a[t - shift].imag])
            gram = hh @ hh.T
            lam = ridge * float(np.mean(np.diag(gram)))
            rhs = y @ hh.T + lam * self.w_out_shipped
            w_out[c] = np.linalg.solve(gram + lam * np.eye(self.n_hidden), rhs.T).T
        self.w_out = np.ascontiguousarray(w_out)
        self.fitted = True
        self._delay_s = None

    def power_response(self, freqs_hz) -> np.ndarray:
        """Power gain for a steady unit sinusoid at each of ``freqs_hz`` (0 Hz: a constant),
        measured by running it (the network is not linear, but homogeneous: the gain does not
        depend on the amplitude); the worst over channels' read-outs."""
        f = np.atleast_1d(np.asarray(freqs_hz, dtype=float))
        n = self.receptive_field + int(round(2.0 * self.sfreq))
        t = np.arange(n) / self.sfreq
        out = np.zeros(f.shape)
        for j, fj in enumerate(f):
            x = np.cos(2 * np.pi * fj * t)
            h = reference_features(x, self.w0, self.w, self.dilations)[:, self.receptive_field:]
            for c in range(self.n_channels):
                y = self.w_out[c] @ h
                out[j] = max(out[j], float(np.mean(0.5 * (y ** 2).sum(axis=0))) / 0.5)
        _, h_lp = signal.sosfreqz(self.prefilter_sos, worN=f, fs=self.sfreq)
        return out * np.abs(h_lp) ** 2

    def memory_s(self) -> float:
        """The network's receptive field (s)."""
        return self.receptive_field_s

    def process_inplace(self, x):
        if not self.seeded:
            self.seed(x[:, 0])
        # filtered into a copy: the caller's chunk is kept elsewhere (e.g. the baseline's record)
        x = self.prefilter.process_inplace(np.array(x, dtype=np.float64, order="C"))
        return tcn_power_inplace(x, self.w0, self.w, self.w_out, self.dilations, self.hist0, self.hist,
                                 self.pos, self.alpha, self.pstate, self._h, self._tmp)

    def describe(self) -> dict:
        d = super().describe()
        d.update({"design_delay_s": self.design_delay_s, "prefilter_hz": float(min(PREFILTER_HZ, 0.45 * self.sfreq)), "receptive_field_s": self.receptive_field_s,
                  "weights": self.weights_name, "readout_fitted": self.fitted,
                  "trained_on": self.meta.get("trained_on", "")})
        return d
