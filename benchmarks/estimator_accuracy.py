"""Envelope accuracy of each mu estimator: correlation with the truth at added delays.

Truth: on simulated data the simulator's known mu amplitude; on EEGMMIDB S001 (C3, C4) the
Hilbert envelope of the ideal zero-phase FFT band-pass (8–13 Hz) of the whole record. r is
computed on the second half of each record; the least-squares cFIR and weighted cFIR (wcFIR)
references are fitted on the first half (Smetanin et al. 2020). Each estimator runs through
its real streaming code in 10-sample chunks (250 Hz) / 6-sample chunks (160 Hz).

    python benchmarks/estimator_accuracy.py --json benchmarks/estimator_accuracy.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from neurofeed.dsp.estimators import (CFIREnvelope, IIREnvelope, WCFIREnvelope, WindowBandPower,  # noqa: E402
                                      design_cfir, psd_weights)
from neurofeed.sources.edf import read_raw  # noqa: E402
from neurofeed.sources.simulated import MuSimulator, SimulationScript  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "eegmmidb-S001"
DELAYS_MS = (0, 20, 50, 100)
DEFAULT = "DEFAULT wcfir (2-s taps, fitted on first half)"
BAND = (8.0, 13.0)


def ideal_envelope(x, sfreq, band=BAND):
    """Hilbert envelope of the ideal (brick-wall, zero-phase) FFT band-pass of the whole record."""
    n = x.size
    f = np.fft.fftfreq(n, 1 / sfreq)
    spec = np.fft.fft(x)
    spec[(np.abs(f) < band[0]) | (np.abs(f) > band[1])] = 0
    spec[f < 0] = 0  # analytic signal: drop negative frequencies, double positive ones
    spec[f > 0] *= 2
    return np.abs(np.fft.ifft(spec))


def run_streaming(est, x, chunk):
    out = np.empty_like(x)
    for i in range(0, x.size, chunk):
        c = x[None, i:i + chunk].copy()  # estimators work in place
        out[i:i + c.shape[1]] = est.process_inplace(c)[0]
    return np.sqrt(2 * np.maximum(out, 0))  # power A²/2 -> amplitude A


def corr_at(env, truth, sfreq, delay_ms, start):
    d = int(round(delay_ms * sfreq / 1000))
    a = env[start + d:]
    b = truth[start:truth.size - d] if d else truth[start:]
    return float(np.corrcoef(a, b)[0, 1])


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


def evaluate(name, x, truth, sfreq, chunk):
    rows = []
    half = x.size // 2
    for delay in DELAYS_MS:
        for est_name, est in estimators_for(x, sfreq, delay, half):
            env = run_streaming(est, x, chunk)
            rows.append({"data": name, "estimator": est_name, "delay_ms": delay,
                         "r": corr_at(env, truth, sfreq, delay, half)})
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
    for run in ("R03", "R04"):
        raw = read_raw(DATA / f"S001{run}.edf")
        sfreq = raw.info["sfreq"]
        for ch in ("C3", "C4"):
            x = raw.get_data(picks=[ch])[0] * 1e6
            for r in evaluate(f"eegmmidb S001{run}", x, ideal_envelope(x, sfreq), sfreq, 6):
                rows.append(dict(r, channel=ch))
    # table: mean r over EEGMMIDB records/channels, and over simulated channels
    names = sorted({r["estimator"] for r in rows})
    print(f"{'estimator':<44s} {'data':<10s} " + " ".join(f"{d:>6d}ms" for d in DELAYS_MS))
    table = {}
    for data_kind in ("simulated", "eegmmidb"):
        for n in names:
            vals = [np.mean([r["r"] for r in rows if r["estimator"] == n and r["delay_ms"] == d
                             and r["data"].startswith(data_kind)]) for d in DELAYS_MS]
            table.setdefault(data_kind, {})[n] = vals
            print(f"{n:<44s} {data_kind:<10s} " + " ".join(f"{v:8.3f}" for v in vals))
    out = {"rows": rows, "mean_r": table, "default_estimator": "wcfir", "delays_ms": list(DELAYS_MS)}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
