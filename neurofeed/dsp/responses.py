"""Frequency responses and delays of the designed filters (analysis, kept apart from design and
application as in scipy.signal), and the statistics of power changes (dB, percent, intervals).

Every filter of the DSP chain is checked against its own response here: the SOS cascades with
:func:`scipy.signal.freqz_sos`, the complex FIR taps of the cFIR estimators with
:func:`scipy.signal.freqz`.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

__all__ = ["sos_response", "fir_response", "sos_group_delay_s", "attenuation_db", "impulse_settle_s", "db_to_pct",
           "pct_to_db", "mean_ci95"]


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


def db_to_pct(db):
    """A power change in dB as percent, ``100·(10^(dB/10) − 1)``: never below −100 %.

    Intervals of power changes are taken in dB (a log ratio, where the statistic is symmetric)
    and only then carried to percent, so a bound cannot fall below −100 %."""
    return 100.0 * (np.power(10.0, np.asarray(db, dtype=float) / 10.0) - 1.0)


def pct_to_db(pct):
    """A power change in percent as dB, ``10·log10(1 + pct/100)`` (−100 % and below read as −60 dB)."""
    return 10.0 * np.log10(np.maximum(1.0 + np.asarray(pct, dtype=float) / 100.0, 1e-6))


def mean_ci95(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over axis 0 and the half-width of its 95 % t-interval (Student's t, n − 1 degrees of
    freedom; NaN with a single row).

    Parameters
    ----------
    x : ndarray, shape (n, ...)
        Observations along axis 0 (e.g. trials), in a domain where their spread is symmetric
        (dB, not percent).

    Returns
    -------
    mean, half_width : ndarray, shape x.shape[1:]
    """
    from scipy import stats

    n = x.shape[0]
    m = x.mean(axis=0)
    if n < 2:
        return m, np.full_like(m, np.nan)
    return m, stats.t.ppf(0.975, n - 1) * x.std(axis=0, ddof=1) / np.sqrt(n)
