"""The participant's own accuracy/delay curve: how well a causal mu envelope designed for each
delay follows the non-causal truth on their baseline.

Shorter designed delays make faster but less accurate feedback (Smetanin et al. 2020). The
curve is computed at the end of the baseline on the participant's own referenced signal so that
the clinician (or the rule in :func:`choose_delay`) can pick the delay for this person.

References
----------
.. [1] Smetanin N, Belinskaya A, Lebedev M, Ossadtchi A (2020). Digital filters for low-latency
   quantification of brain rhythms in real time. J Neural Eng 17:046022.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from .estimators import cfir_designer, fit_weights, grid_size

# designed delays scored on the participant's baseline: forecasting designs (< 0) included, since on
# real EEG the 0-ms design is read ~45 ms late and the 50-ms budget is for the bar as painted
CURVE_DELAYS_S = (-0.04, -0.03, -0.02, -0.01, -0.005, 0.0, 0.01, 0.02, 0.05, 0.1)
# "choose": the designs allowed for the participant's 50-ms budget, electrode -> painted bar. On real
# EEG a causal 8-13 Hz design is read 35-55 ms after its designed delay (the effective delay) and the
# loop adds 1-3 ms. With the fitted wcFIR's stop-band floor (>= 30 dB from 45 Hz up, issue 19), the
# record that reads latest of EEGMMIDB S001 R03-R06 (R04) reads the -10-ms design at 44-46 ms and the
# -5-ms one at 48-50 ms (offline / live), so the budget allows designs up to -10 ms: the -5-ms design
# would sit on the 50-ms line itself (benchmarks/RESULTS.md "Electrode to painted bar"). A bound on the
# designed delay, not on the effective delay the baseline's curve reads: on a 6-25-s scoring half the
# curve's lags scatter by up to +-16 ms around what the session then shows, while the order of its
# r's holds.
CHOOSE_MAX_DELAY_S = -0.01
# "faithful": within 0.01 r of the best design inside the budget (about what a 5-ms step of the
# design buys on real EEG), so a participant whose curve is flat there gets a faster design
CHOOSE_TOLERANCE_R = 0.01
# A design whose effective delay the baseline's curve reads beyond this, or at 0 (the lag search's
# floor: its peak may lie below it), is never chosen, whatever its r there: on a 13.5-s baseline
# of EEGMMIDB S001 R05/R06 (C3-TP9) the lag search read the -40-ms design at 184-273 ms, where its
# r happened to beat the -10-ms design's at 23-62 ms, and the rule took it; on R05's C3/C4 it read
# the -40-ms design at 0 ms (benchmarks/RESULTS.md, "A cFIR with a memory"). Twice the 50-ms
# budget: far beyond the +-16-ms scatter of an honest reading.
CHOOSE_MAX_EFFECTIVE_S = 0.1
# What a design's effective delay typically is on real EEG, electrode -> painted bar through the
# emulated Cyton (loop included), for printing a protocol's expected bar delay before any baseline:
# designed delay (s) -> effective delay (s), wcFIR 8-13 Hz on EEGMMIDB S001R04, the record that reads
# latest, with the stop-band floor (live: -10 ms -> ~46 ms, -5 ms -> ~50 ms, 0 ms -> ~53 ms, 50 ms -> ~82 ms;
# offline: -40 ms -> ~32 ms, 100 ms -> ~112 ms; benchmarks/RESULTS.md). The uniform cFIR reads a few ms later.
TYPICAL_EFFECTIVE_S = {-0.04: 0.032, -0.01: 0.046, -0.005: 0.05, 0.0: 0.053, 0.05: 0.082, 0.1: 0.112}
TYPICAL_OTHER_S = {"iir": 0.14, "window": 0.5}  # estimators with no designed delay
EFFECTIVE_MAX_LAG_S = 0.3  # longest lag searched for a design's effective delay


def ideal_envelope(x: np.ndarray, sfreq: float, band_hz) -> np.ndarray:
    """Hilbert envelope of the ideal (brick-wall, zero-phase) FFT band-pass of the whole record.

    The non-causal truth the causal estimators are scored against.

    Parameters
    ----------
    x : ndarray, shape (n_samples,) or (n_rows, n_samples)
        Signal (µV).
    sfreq : float
        Sampling rate (Hz).
    band_hz : (float, float)
        Pass band (Hz).

    Returns
    -------
    env : ndarray, same shape as ``x``
        Amplitude envelope (µV), a new array.
    """
    x = np.asarray(x, dtype=float)
    n = x.shape[-1]
    f = np.fft.fftfreq(n, 1 / sfreq)
    spec = np.fft.fft(x, axis=-1)
    spec[..., (np.abs(f) < band_hz[0]) | (np.abs(f) > band_hz[1])] = 0
    spec[..., f < 0] = 0  # analytic signal: drop negative frequencies, double positive ones
    spec[..., f > 0] *= 2
    return np.abs(np.fft.ifft(spec, axis=-1))


def corr_at_delay(env: np.ndarray, truth: np.ndarray, sfreq: float, delay_s: float, start: int) -> float:
    """Pearson r between ``env`` and ``truth`` delayed by ``delay_s``, from sample ``start`` on.

    Returns
    -------
    r : float
    """
    d = int(round(delay_s * sfreq))  # pairs (env[i + d], truth[i]); a forecasting design has d < 0
    n = min(env.size, truth.size)
    lo, hi = max(start, -d), min(n, n - d)
    return float(np.corrcoef(env[lo + d:hi + d], truth[lo:hi])[0, 1])


def corr_by_lag(env: np.ndarray, truth: np.ndarray, max_lag: int) -> np.ndarray:
    """Pearson r between ``env[k:]`` and ``truth[:len - k]`` for every lag ``k`` in 0..``max_lag``
    samples at once: one FFT cross-correlation for the cross sums and cumulative sums for the
    means and variances of each overlap (what :func:`corr_at_delay` computes lag by lag).

    Returns
    -------
    r : ndarray, shape (max_lag + 1,)
    """
    a = np.asarray(env, dtype=float)
    b = np.asarray(truth, dtype=float)
    m = a.size
    k = np.arange(max_lag + 1)
    length = (m - k).astype(float)
    # centre first: the sums below then stay small and the differences exact enough in float64
    a = a - a.mean()
    b = b - b.mean()
    sxy = signal.fftconvolve(a, b[::-1])[m - 1:m + max_lag]  # sum_i a[i + k] b[i]
    ca = np.concatenate(([0.0], np.cumsum(a[::-1])))  # sums of a's tail: sum(a[k:]) = ca[m - k]
    ca2 = np.concatenate(([0.0], np.cumsum(a[::-1] ** 2)))
    cb = np.concatenate(([0.0], np.cumsum(b)))  # sum(b[:m - k]) = cb[m - k]
    cb2 = np.concatenate(([0.0], np.cumsum(b ** 2)))
    sx, sxx = ca[m - k], ca2[m - k]
    sy, syy = cb[m - k], cb2[m - k]
    cov = length * sxy - sx * sy
    var = (length * sxx - sx ** 2) * (length * syy - sy ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return cov / np.sqrt(var)


def accuracy_delay_curve(baseline_x: np.ndarray, sfreq: float, band_hz, delays_s=CURVE_DELAYS_S,
                         taps_s: float = 2.0, fit_fraction: float = 0.5) -> dict:
    """The weighted cFIR's accuracy at each designed delay on the participant's own baseline:
    ``{delay_s: r}`` (the first of :func:`delay_curves`; see there)."""
    return delay_curves(baseline_x, sfreq, band_hz, delays_s, taps_s, fit_fraction)[0]


def delay_curves(baseline_x: np.ndarray, sfreq: float, band_hz, delays_s=CURVE_DELAYS_S,
                 taps_s: float = 2.0, fit_fraction: float = 0.5,
                 max_lag_s: float = EFFECTIVE_MAX_LAG_S, weighted: bool = True,
                 memory_s: float | None = None) -> tuple[dict, dict]:
    """The weighted cFIR's accuracy at each designed delay on the participant's own baseline,
    and where each design really lands.

    For each target row the weighted cFIR (``taps_s`` long, the default estimator's design; the
    uniform cFIR with ``weighted=False``) is fitted on the first ``fit_fraction`` of ``baseline_x``
    and run causally over the whole of it; its log power (log10 of ``A**2 / 2``, as the SI reads it) is
    compared, on the rest, with the non-causal truth's (:func:`ideal_envelope` of the whole baseline):

    - ``r`` at the designed delay (the measure of Smetanin et al. 2020);
    - the **effective delay**: the lag (0 to ``max_lag_s``, one-sample steps) at which the
      envelope correlates best with the truth, and r there. A causal envelope of a few-Hz-wide
      band is read later than designed (the 0-ms design lands ~45 ms late on EEGMMIDB S001): this
      is the delay the participant gets from the estimator, what the clinician chooses on and
      what :func:`choose_delay` chooses on.

    Scored on the targets' mean log power, as the combined SI and the bar follow it. Cost: a Welch spectrum, one solve and two FFT convolutions (the filter, and the correlation
    at every lag at once, :func:`corr_by_lag`) per target and delay — about 20 ms for 2 targets
    × 60 s at 250 Hz on the project machine, once, at the baseline's end.

    Parameters
    ----------
    baseline_x : ndarray, shape (n_targets, n_samples)
        The referenced baseline (µV), as the estimator sees it.
    sfreq : float
        Sampling rate (Hz).
    band_hz : (float, float)
        The mu band in use (Hz; the individual band if one was fitted).
    delays_s : sequence of float
        Designed delays to score (s).
    taps_s : float
        Filter length (s).
    fit_fraction : float
        Share of the baseline used to fit; the rest is scored.
    max_lag_s : float
        Longest lag searched for the effective delay (s).
    weighted : bool
        Weight the least-squares design by the fitting part's spectrum (wcFIR) or not (cFIR).
    memory_s : float, optional
        The live design's memory limit (:func:`design_cfir`); ``taps_s`` is the limited length.

    Returns
    -------
    curve : dict
        ``{delay_s: r}`` (floats), in the order of ``delays_s``.
    effective : dict
        ``{delay_s: (effective_delay_s, r_there)}``.
        Both are empty if the baseline is too short to fit and score (less than twice the filter
        length).
    """
    x = np.atleast_2d(np.asarray(baseline_x, dtype=float))
    x = np.where(np.isfinite(x), x, 0.0)
    n = x.shape[1]
    n_taps = int(round(taps_s * sfreq))
    split = int(n * fit_fraction)
    if split < n_taps or n - split < n_taps:
        return {}, {}
    # scored in log power, the domain of the SI and the bar (the amplitude envelope correlates
    # higher and peaks at nearly the same lag, benchmarks/RESULTS.md)
    truth = _log_power(ideal_envelope(x, sfreq, band_hz))
    n_fft = grid_size(n_taps)  # the live estimator's design grid (any sampling rate)
    designers = _designers(x[:, :split], sfreq, band_hz, n_taps, n_fft, weighted, memory_s)
    lags = np.arange(0, int(round(max_lag_s * sfreq)) + 1)
    truth = truth.mean(axis=0)  # the targets' mean log power: what the combined SI and the bar follow
    curve, effective = {}, {}
    for d in delays_s:
        env = np.zeros(n)
        for row, design in zip(x, designers):
            h = design(float(d))
            env += _log_power(np.abs(signal.fftconvolve(row, h)[:n]))  # causal: y[n] = sum_k h[k] x[n-k]
        env /= x.shape[0]
        curve[float(d)] = corr_at_delay(env, truth, sfreq, float(d), split)
        r_lag = corr_by_lag(env[split:], truth[split:], lags.size - 1)
        i = int(np.nanargmax(r_lag)) if np.isfinite(r_lag).any() else 0
        effective[float(d)] = (float(lags[i] / sfreq), float(r_lag[i]))
    return curve, effective


def _designers(fit_x: np.ndarray, sfreq: float, band_hz, n_taps: int, n_fft: int, weighted: bool,
               memory_s: float | None) -> list:
    """One :func:`cfir_designer` per target row: fitted to the row's own spectrum (weighted), or
    the one uniform design shared by every row."""
    if weighted:
        return [cfir_designer(sfreq, band_hz, n_taps, fit_weights(row, sfreq, band_hz, n_fft), n_fft, memory_s)
                for row in fit_x]
    return [cfir_designer(sfreq, band_hz, n_taps, None, n_fft, memory_s)] * fit_x.shape[0]


def _log_power(env: np.ndarray) -> np.ndarray:
    """log10 of ``env**2 / 2`` (µV² of a rhythm of amplitude ``env``), floored like the SI."""
    return np.log10(np.maximum(env ** 2 / 2, 1e-12))


def choose_delay(curve: dict, effective: dict | None = None, max_delay_s: float = CHOOSE_MAX_DELAY_S,
                 tolerance_r: float = CHOOSE_TOLERANCE_R) -> float | None:
    """The rule behind ``delay_s = "choose"``: the fastest design whose bar stays faithful.

    Among the designed delays up to ``max_delay_s`` (the 50-ms budget, :data:`CHOOSE_MAX_DELAY_S`),
    take the best r; choose the shortest design whose r is within ``tolerance_r`` of it: no slower
    design inside the budget would be noticeably more faithful. A design read later than
    :data:`CHOOSE_MAX_EFFECTIVE_S` on the baseline, or at 0, is left out (a lag search gone astray). r is the log-power correlation at
    the design's effective delay (``effective``, from :func:`delay_curves`: what the participant's
    bar would show) where given, else at the designed delay (``curve``).

    Returns
    -------
    delay_s : float or None
        None if the curve has no delay within ``max_delay_s``.
    """
    score = {d: (effective[d][1] if effective and d in effective else r) for d, r in curve.items()}
    misread = {d for d in score if effective and d in effective
               and not 0.0 < effective[d][0] <= CHOOSE_MAX_EFFECTIVE_S}
    allowed = {d: r for d, r in score.items() if d <= max_delay_s + 1e-12 and np.isfinite(r) and d not in misread}
    if not allowed:
        return None
    best = max(allowed.values())
    return min(d for d, r in allowed.items() if r >= best - tolerance_r)


def format_curve(curve: dict) -> str:
    """``"r@0ms=0.55 r@20ms=0.64 ..."`` for events and the console."""
    return " ".join(f"r@{1000 * d:.0f}ms={r:.3f}" for d, r in curve.items())


def bar_timing(curve: dict, effective: dict, delay_s: float) -> list[tuple[str, float, float, float]]:
    """The participant's designs in plain words, as the console, the terminal and the end-of-session
    summary show them: the design in use, the one the bar follows soonest and the one that follows
    the rhythm most closely, each ``(words, design_s, lag_s, r)`` — e.g. ``("faster, less exact",
    -0.02, 0.040, 0.45)``. The lag is the design's effective delay (where measured, else its
    designed delay) and r the log-power correlation there. Empty without a curve."""
    if not curve or not np.isfinite(delay_s):
        return []
    rows = {d: (effective[d][0], effective[d][1]) if d in (effective or {}) else (d, r) for d, r in curve.items()}
    used = min(rows, key=lambda d: abs(d - delay_s))
    lag0, r0 = rows[used]
    picks = [("in use", used)]
    faster = [d for d in rows if rows[d][0] < lag0 - 0.0005]  # a design the bar follows sooner (> 0.5 ms)
    exact = [d for d in rows if rows[d][1] > r0 + 0.005]  # a design that follows it more closely
    for d in ([min(faster, key=lambda d: rows[d][0])] if faster else []) + \
             ([max(exact, key=lambda d: rows[d][1])] if exact else []):
        if all(d != p for _, p in picks):
            lag, r = rows[d]
            speed = "faster" if lag < lag0 - 0.0005 else ("steadier" if lag > lag0 + 0.0005 else "as fast")
            picks.append((speed + ", " + ("less exact" if r < r0 - 0.005 else
                                          ("more exact" if r > r0 + 0.005 else "as exact")), d))
    return [(words, float(d), float(rows[d][0]), float(rows[d][1])) for words, d in picks]


def curve_summary(curve: dict, effective: dict, delay_s: float) -> str:
    """:func:`bar_timing` on one plain line for terminals and summaries, e.g. ``"bar timing for
    this participant: in use 46 ms (r 0.62); faster, less exact 38 ms (r 0.55)"``."""
    return "bar timing for this participant: " + "; ".join(
        f"{words} {1000 * lag:.0f} ms (r {r:.2f})" for words, _, lag, r in bar_timing(curve, effective, delay_s))


def format_effective(effective: dict) -> str:
    """``"0ms->44ms(r=0.68) 20ms->56ms(r=0.75) ..."``: each design's effective delay and r there."""
    return " ".join(f"{1000 * d:.0f}ms->{1000 * lag:.0f}ms(r={r:.3f})" for d, (lag, r) in effective.items())


def typical_effective_delay_s(estimator: str, delay_s) -> float:
    """The effective delay (s) a design typically reaches on real EEG, loop included, before any
    baseline: :data:`TYPICAL_EFFECTIVE_S` interpolated at the designed delay (``"choose"``: the
    budget's longest design, :data:`CHOOSE_MAX_DELAY_S`) for the (w)cFIR, else
    :data:`TYPICAL_OTHER_S`."""
    if estimator in ("wcfir", "cfir"):
        d = CHOOSE_MAX_DELAY_S if delay_s == "choose" else float(delay_s)
        xs = sorted(TYPICAL_EFFECTIVE_S)
        return float(np.interp(d, xs, [TYPICAL_EFFECTIVE_S[k] for k in xs],
                               left=None, right=None)) + (0.005 if estimator == "cfir" else 0.0)
    return TYPICAL_OTHER_S.get(estimator, float("nan"))
