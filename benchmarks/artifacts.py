"""Artifact handling on real EEG: gate-closed time and the SI each choice costs.

EEGMMIDB S001 R03–R06 (160 Hz), run through ``MuChain`` causally in 8-sample chunks as live:
the first ``--baseline-s`` seconds are the baseline (at its end: ``chain.calibrate`` with the raw
baseline chunks, then the weighted cFIR is fitted to the baseline's target signals, as
``Processor`` does), the rest is "feedback time". Two montages: the Cyton default subset
(Fp1 Fp2 C3 C4 P7 P8 O1 O2, average reference) and the full 64 channels (Laplacian).

Choices compared (each a row):
  fixed        protocol caps as thresholds (blink 80 µV, EMG 10 µV), no ocular regression
  calibrated   median + k·MAD of the baseline under the caps, no ocular regression
  calib+eog    calibrated, ocular regression of the targets on Fp1/Fp2 (Gratton), residual gate
Per row: gate closed (% of feedback time), fist SI = log10(mean power 0.5–4 s after T1/T2
onsets / mean power in T0 segments) over ungated samples, mean of C3/C4, pooled over the runs
(R03/R04: fists; R05/R06 T2: feet), and its change against the same chain ungated without
regression ("ref").

    python benchmarks/artifacts.py --json benchmarks/artifacts.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.eeg_data import EEGMMIDB as DATA  # noqa: E402  (full records, else tests/data)
from neurofeed.core.channels import normalize_names  # noqa: E402
from neurofeed.dsp.chain import MuChain  # noqa: E402
from neurofeed.dsp.quality import QualityConfig  # noqa: E402

CYTON = ["Fp1", "Fp2", "C3", "C4", "P7", "P8", "O1", "O2"]
CHUNK = 8


def load(run):
    import mne

    raw = mne.io.read_raw_edf(DATA / f"S001R{run}.edf", preload=True, verbose="error")
    names = normalize_names(raw.ch_names)
    return raw.get_data() * 1e6, names, float(raw.info["sfreq"]), raw.annotations


def run_chain(x, names, sfreq, reference, mode, baseline_s):
    """Causal run; returns (power n_targets × n, gated per sample bool, chain)."""
    qcfg = QualityConfig(rail_uv=1e6, emg_uv=10.0, blink_uv=80.0)
    chain = MuChain(sfreq, names, ["C3", "C4"], reference, (8.0, 13.0), "wcfir", 0.05, None, 60.0, qcfg)
    n = x.shape[1]
    nb = int(baseline_s * sfreq)
    power = np.zeros((2, n))
    gated = np.zeros(n, dtype=bool)
    chain.keep_spatial = True
    for s in range(0, n, CHUNK):
        if s == nb:  # end of the baseline, as Processor does it
            chain.keep_spatial = False
            raw_chunks = chain.kept_raw
            if mode in ("calibrated", "calib+eog"):
                chain.calibrate(raw_chunks, ocular=(mode == "calib+eog"))
            base = np.concatenate(chain.kept, axis=1)
            chain.retune(chain.band_hz, baseline=base)
            for k in np.split(base, range(CHUNK, base.shape[1], CHUNK), axis=1):  # warm the new estimator
                chain.estimator.process_inplace(np.ascontiguousarray(k))
            chain.kept, chain.kept_raw = [], []
        p = chain.process(x[:, s:s + CHUNK])
        power[:, s:s + p.shape[1]] = p
        gated[s:s + p.shape[1]] = chain.gated
    return power, gated, chain


def epochs(ann, sfreq, n, run):
    rest, fist, feet = (np.zeros(n, bool) for _ in range(3))
    for a in ann:
        s = int(round(a["onset"] * sfreq))
        if a["description"] == "T0":
            rest[s:min(n, s + int(a["duration"] * sfreq))] = True
        else:
            sel = slice(s + int(0.5 * sfreq), min(n, s + int(4.0 * sfreq)))
            (feet if (a["description"] == "T2" and run in ("05", "06")) else fist)[sel] = True
    return rest, fist, feet


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json")
    ap.add_argument("--baseline-s", type=float, default=30.0)
    args = ap.parse_args(argv)
    rows = []
    for montage, reference in (("cyton8-average", "average"), ("full64-laplacian", "laplacian")):
        for mode in ("ref", "fixed", "calibrated", "calib+eog"):
            acc = {"rest": [], "fist": [], "feet": []}
            closed, fb_total, cal = 0, 0, []
            for run in ("03", "04", "05", "06"):
                x, names, sfreq, ann = load(run)
                if montage.startswith("cyton"):
                    x = x[[names.index(c) for c in CYTON]]
                    names = CYTON
                power, gated, chain = run_chain(x, names, sfreq, reference,
                                                "fixed" if mode == "ref" else mode, args.baseline_s)
                if mode == "ref":
                    gated[:] = False
                nb = int(args.baseline_s * sfreq)
                closed += int(gated[nb:].sum())
                fb_total += x.shape[1] - nb
                cal.append(chain.calibration)
                rest, fist, feet = epochs(ann, sfreq, x.shape[1], run)
                ok = ~gated
                ok[:nb + int(2 * sfreq)] = False  # feedback time only, after the refit settles
                for k, m in (("rest", rest), ("fist", fist), ("feet", feet)):
                    acc[k].append(power[:, m & ok])
            mean = {k: np.concatenate(v, axis=1).mean(axis=1) for k, v in acc.items()}
            si_fist = float(np.mean(np.log10(mean["fist"] / mean["rest"])))
            si_feet = float(np.mean(np.log10(mean["feet"] / mean["rest"])))
            row = {"montage": montage, "mode": mode, "gate_closed_pct": 100.0 * closed / fb_total,
                   "si_fist": si_fist, "si_feet": si_feet,
                   "calibration": [{k: v for k, v in c.items()} for c in cal]}
            rows.append(row)
            print(f"{montage:18s} {mode:11s} gate closed {row['gate_closed_pct']:5.1f} %  "
                  f"SI fist {si_fist:+.3f}  SI feet {si_feet:+.3f}", flush=True)
    for r in rows:
        ref = next(q for q in rows if q["montage"] == r["montage"] and q["mode"] == "ref")
        r["d_si_fist"] = r["si_fist"] - ref["si_fist"]
    print("\n| montage | choice | gate closed (% feedback time) | fist SI | Δ fist SI vs ungated | feet SI |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['montage']} | {r['mode']} | {r['gate_closed_pct']:.1f} | {r['si_fist']:+.3f} | "
              f"{r['d_si_fist']:+.3f} | {r['si_feet']:+.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=float))
    return rows


if __name__ == "__main__":
    main()
