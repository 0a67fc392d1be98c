"""Frequency responses and delays of the designed filters (analysis, kept apart from design and
application as in scipy.signal).

Every filter of the DSP chain is checked against its own response here: the SOS cascades with
:func:`scipy.signal.freqz_sos`, the complex FIR taps of the cFIR estimators with
:func:`scipy.signal.freqz`.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

__all__ = ["sos_response", "fir_response", "sos_group_delay_s", "attenuation_db", "impulse_settle_s"]


def sos_response(sos: np.ndarray, freqs_hz, sfreq: float) -> np.ndarray:
    """Complex response of an SOS cascade at ``freqs_hz``.

    Parameters
    ----------
    sos : ndarray, shape (n_sections, 6)
    freqs_hz : array-like, shape (n_freqs,)
        Frequencies in Hz (0 … sfreq/2).
    sfreq : float
        Sampling rate in Hz.

    Returns
    -------
    h : ndarray of complex128, shape (n_freqs,)
        A new array (unitless gain).
    """
    _, h = signal.freqz_sos(sos, worN=np.atleast_1d(np.asarray(freqs_hz, dtype=float)), fs=sfreq)
    return h


def fir_response(taps: np.ndarray, freqs_hz, sfreq: float) -> np.ndarray:
    """Complex response of FIR ``taps`` (real or complex, ``y[n] = sum_k h[k] x[n-k]``).

    Parameters
    ----------
    taps : ndarray, shape (n_taps,)
    freqs_hz : array-like, shape (n_freqs,)
        Frequencies in Hz; negative frequencies are allowed (complex taps are not symmetric).
    sfreq : float

    Returns
    -------
    h : ndarray of complex128, shape (n_freqs,)
    """
    f = np.atleast_1d(np.asarray(freqs_hz, dtype=float))
    k = np.arange(len(taps))
    return np.exp(-2j * np.pi * np.outer(f / sfreq, k)) @ np.asarray(taps, dtype=complex)


def sos_group_delay_s(sos: np.ndarray, freqs_hz, sfreq: float) -> np.ndarray:
    """Group delay of an SOS cascade at ``freqs_hz``, in seconds (sum over the sections,
    each through :func:`scipy.signal.group_delay`, which avoids the ill-conditioned
    ``sos2tf`` of a long cascade).

    Returns
    -------
    delay_s : ndarray, shape (n_freqs,)
    """
    f = np.atleast_1d(np.asarray(freqs_hz, dtype=float))
    total = np.zeros(f.shape)
    for sec in np.atleast_2d(sos):
        _, gd = signal.group_delay((sec[:3], sec[3:]), w=f, fs=sfreq)
        total += gd
    return total / sfreq


def attenuation_db(gain_at: np.ndarray, gain_ref: float) -> np.ndarray:
    """``20 log10(|gain_at| / |gain_ref|)`` in dB (amplitude), with an exact zero read as -400 dB."""
    return 20.0 * np.log10(np.maximum(np.abs(gain_at), 1e-20) / abs(gain_ref))


def impulse_settle_s(response: np.ndarray, sfreq: float, fraction: float = 0.95) -> float:
    """Time (s) by which ``fraction`` of the energy of a non-negative output ``response`` (e.g. an
    estimator's power output after a unit impulse at sample 0) has been delivered.

    Returns
    -------
    settle_s : float
        Seconds from the impulse; past it the output holds less than ``1 - fraction`` of the
        disturbance.
    """
    r = np.abs(np.asarray(response, dtype=float))
    c = np.cumsum(r)
    if c[-1] <= 0:
        return 0.0
    return float((np.searchsorted(c, fraction * c[-1]) + 1) / sfreq)
