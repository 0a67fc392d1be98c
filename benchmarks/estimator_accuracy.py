"""Envelope accuracy of each mu estimator: correlation with the truth at added delays.

Truth: on simulated data the simulator's known mu amplitude; on EEGMMIDB S001 (C3, C4) the
Hilbert envelope of the ideal zero-phase FFT band-pass (8–13 Hz) of the whole record. r is
computed on the second half of each record; the least-squares cFIR and weighted cFIR (wcFIR)
references are fitted on the first half (Smetanin et al. 2020). Each estimator runs through
its real streaming code in 10-sample chunks (250 Hz) / 6-sample chunks (160 Hz).

Individual-band rows (EEGMMIDB only; the cFIR paper's procedure): the participant's mu peak is
taken from the fitting half's spectrum within 8–13 Hz and the band is the peak ± 2 Hz; the
wcFIR is fitted on the fitting half in that band. They are scored twice: against the fixed
8–13 Hz truth (comparable with the other rows) and against the truth in the individual band
(as in the paper). The "other run" row fits the wcFIR on the same participant's other run
(R03 <-> R04): a fit made once per participant rather than per session.

    python benchmarks/estimator_accuracy.py --json benchmarks/estimator_accuracy.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.eeg_data import EEGMMIDB as DATA  # noqa: E402  (full records, else tests/data)
from neurofeed.dsp.accuracy import (
    accuracy_delay_curve,
    choose_delay,
    corr_at_delay,
    corr_by_lag,
    format_curve,
    ideal_envelope,
)
from neurofeed.dsp.estimators import CFIREnvelope, IIREnvelope, WCFIREnvelope, WindowBandPower, design_cfir, psd_weights  # noqa: E402
from neurofeed.dsp.individual_band import individual_band  # noqa: E402
from neurofeed.hardware.sources.edf import read_raw  # noqa: E402
from neurofeed.hardware.sources.simulated import MuSimulator, SimulationScript  # noqa: E402

DELAYS_MS = (0, 20, 50, 100)
DEFAULT = "DEFAULT wcfir (2-s taps, fitted on first half)"
BAND = (8.0, 13.0)
IAF_WIDTH_HZ = 2.0
IND = "wcfir, individual band (peak ± 2 Hz of the fitting half)"


def run_streaming(est, x, chunk):
    out = np.empty_like(x)
    for i in range(0, x.size, chunk):
        c = x[None, i:i + chunk].copy()  # estimators work in place
        out[i:i + c.shape[1]] = est.process_inplace(c)[0]
    return np.sqrt(2 * np.maximum(out, 0))  # power A²/2 -> amplitude A


def estimators_for(x, sfreq, delay_ms, half):
    """(name, estimator) pairs for one record and one target delay."""
    d = delay_ms / 1000
    w = psd_weights(x[:half], sfreq)
    default = WCFIREnvelope(sfreq, BAND, 1, delay_s=d)  # the feedback default: 2-s taps, fitted to the baseline
    default.fit(x[None, :half])  # here the first half stands in for the baseline
    return [
        (DEFAULT, default),
        ("iir (butterworth+square+exp, NFBLab-style)", IIREnvelope(sfreq, BAND, 1, smoothing_s=0.05)),
        ("window (1-s band power)", WindowBandPower(sfreq, BAND, 1, window_s=1.0)),
        ("cfir (LS, uniform weights)", CFIREnvelope(sfreq, BAND, 1, delay_s=d)),
        ("wcfir reference (1-s taps, Smetanin et al.)", CFIREnvelope(sfreq, BAND, 1, delay_s=d,
                                                                taps=design_cfir(sfreq, BAND, d, weights=w))),
    ]


def best_lag(env, truth, sfreq, start, max_ms=1000):
    """The lag at which the envelope correlates best with the truth (its effective delay, which
    may differ from the designed one) and r there."""
    r = corr_by_lag(env[start:], truth[start:], int(max_ms * sfreq / 1000))  # every lag, one FFT
    i = int(np.nanargmax(r))
    return {"best_lag_ms": float(i * 1000 / sfreq), "r_at_best_lag": float(r[i])}


def evaluate(name, x, truth, sfreq, chunk, other=None):
    """Rows for one record: every estimator at every delay (``other``: the same channel of the
    participant's other run, for the once-per-participant fit; EEGMMIDB only)."""
    rows = []
    half = x.size // 2
    for delay in DELAYS_MS:
        d = delay / 1000
        ests = estimators_for(x, sfreq, delay, half)
        if other is not None:
            fitted = WCFIREnvelope(sfreq, BAND, 1, delay_s=d)
            fitted.fit(other[None, :other.size // 2])
            ests.append(("wcfir fitted on the participant's other run", fitted))
        for est_name, est in ests:
            env = run_streaming(est, x, chunk)
            rows.append({"data": name, "estimator": est_name, "delay_ms": delay,
                         "r": corr_at_delay(env, truth, sfreq, d, half), **best_lag(env, truth, sfreq, half)})
        if other is not None:  # individual band: the peak of the fitting half's spectrum ± 2 Hz
            band = individual_band(x[None, :half], sfreq, BAND, IAF_WIDTH_HZ)
            est = WCFIREnvelope(sfreq, band, 1, delay_s=d)
            est.fit(x[None, :half])
            env = run_streaming(est, x, chunk)
            for truth_name, tr in (("8-13 Hz truth", truth), ("individual-band truth", ideal_envelope(x, sfreq, band))):
                rows.append({"data": name, "estimator": f"{IND}, vs {truth_name}", "delay_ms": delay,
                             "r": corr_at_delay(env, tr, sfreq, d, half), "band_hz": list(band),
                             **best_lag(env, tr, sfreq, half)})
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write results here")
    args = ap.parse_args(argv)
    rows = []
    sim = MuSimulator(seed=3, script=SimulationScript.alternating(400, factor=0.5))
    data, truth = sim.generate(int(300 * sim.sfreq))
    for j, ch in enumerate(sim.mu_names):
        x = data[sim.ch_names.index(ch)]
        for r in evaluate("simulated", x, truth[j], sim.sfreq, 10):
            rows.append(dict(r, channel=ch))
    runs = {}
    for run in ("R03", "R04"):
        raw = read_raw(DATA / f"S001{run}.edf")
        runs[run] = (raw.info["sfreq"], {ch: raw.get_data(picks=[ch])[0] * 1e6 for ch in ("C3", "C4")})
    curves = {}
    for run, other_run in (("R03", "R04"), ("R04", "R03")):
        sfreq, chans = runs[run]
        for ch, x in chans.items():
            for r in evaluate(f"eegmmidb S001{run}", x, ideal_envelope(x, sfreq, BAND), sfreq, 6,
                              other=runs[other_run][1][ch]):
                rows.append(dict(r, channel=ch))
        # the participant's curve as the session computes it (first minute of the run as the baseline)
        base = np.array([chans["C3"][:int(60 * sfreq)], chans["C4"][:int(60 * sfreq)]])
        curve = accuracy_delay_curve(base, sfreq, BAND)
        curves[run] = {"curve": {f"{1000 * k:.0f}": v for k, v in curve.items()}, "chosen_delay_s": choose_delay(curve)}
        print(f"S001{run} 60-s baseline curve: {format_curve(curve)} -> choose {choose_delay(curve)} s")
    # table: mean r over EEGMMIDB records/channels, and over simulated channels
    names = sorted({r["estimator"] for r in rows})
    print(f"{'estimator':<60s} {'data':<10s} " + " ".join(f"{d:>6d}ms" for d in DELAYS_MS))
    table = {}
    for data_kind in ("simulated", "eegmmidb"):
        for n in names:
            sel = [[r["r"] for r in rows if r["estimator"] == n and r["delay_ms"] == d
                    and r["data"].startswith(data_kind)] for d in DELAYS_MS]
            if not all(sel):
                continue
            vals = [float(np.mean(v)) for v in sel]
            table.setdefault(data_kind, {})[n] = vals
            print(f"{n:<60s} {data_kind:<10s} " + " ".join(f"{v:8.3f}" for v in vals))
    # effective delay: where each design actually correlates best (EEGMMIDB, mean over records/channels)
    print(f"\n{'effective lag (ms) / r there, EEGMMIDB':<60s} " + " ".join(f"{d:>9d}ms" for d in DELAYS_MS))
    lag_table = {}
    for n in names:
        sel = [[r for r in rows if r["estimator"] == n and r["delay_ms"] == d and r["data"].startswith("eegmmidb")
                and "best_lag_ms" in r] for d in DELAYS_MS]
        if not all(sel):
            continue
        vals = [(float(np.mean([r["best_lag_ms"] for r in v])), float(np.mean([r["r_at_best_lag"] for r in v])))
                for v in sel]
        lag_table[n] = vals
        print(f"{n:<60s} " + " ".join(f"{a:5.0f}/{b:.3f}" for a, b in vals))
    out = {"rows": rows, "mean_r": table, "effective_lag_ms_and_r_eegmmidb": lag_table, "default_estimator": "wcfir", "delays_ms": list(DELAYS_MS),
           "participant_curves_60s_baseline": curves}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
