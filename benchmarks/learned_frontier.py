"""The learned estimator (``neurofeed.dsp.learned``, a causal TCN) on the accuracy / delay frontier
beside the weighted cFIR, on the test records only (issue #20, "beyond the linear frontier").

Records: EEGMMIDB S001 R03, R04, R05, R06 (160 Hz, small Laplacian, 60-Hz notch) and MI-OpenBCI
S02 (125 Hz, common average, 50-Hz notch), C3 and C4, each one channel at a time, conditioned and
referenced by :class:`neurofeed.dsp.chain.MuChain` (``benchmarks/learned/data.py``). None of them
was used in training (S001 R01/R02 + simulated data were).

Each estimator is fitted on the record's first half (wcFIR: its PSD weights; learned +readout:
the read-out layer's ridge refit; learned: nothing, the shipped weights) and streamed over the
whole record in 6-sample (160 Hz) / 5-sample (125 Hz) chunks (``latency_frontier.stream``); scored
on the second half as ``latency_frontier.best`` scores: the lag (−100…300 ms, one-sample steps,
refined between samples by a parabola through the peak) at which its log10 power correlates best
with the truth's (``ideal_envelope`` 8–13 Hz of the whole record) = effective delay, and that r.

Matched delay: the wcFIR's r at the learned row's effective delay, interpolated linearly along
the wcFIR designs' (effective delay, r) points of the same record (clamped at the ends; the
nearest design is reported too). Verdict: the learned estimator would become the default only
if it beat the wcFIR by >= 0.03 r at matched delay on every record.

    PYTHONPATH=. python benchmarks/learned_frontier.py --json benchmarks/learned_frontier.json

About a minute.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "learned"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data import BAND, test_records  # noqa: E402
from latency_frontier import FLOOR_UV2, LAG_MAX_MS, LAG_MIN_MS, lag_curve, stream  # noqa: E402

from neurofeed.dsp.accuracy import ideal_envelope  # noqa: E402
from neurofeed.dsp.estimators import WCFIREnvelope  # noqa: E402
from neurofeed.dsp.learned import LearnedEnvelope, shipped_designs  # noqa: E402

WCFIR_DELAYS_MS = (-40, -20, 0, 20, 50, 100)
MARGIN_R = 0.03


def rows_for(sfreq, weights_path=None):
    """(name, family, design delay ms, factory) for one rate."""
    rows = [(f"wcfir @{d:+d}ms", "wcfir", d, lambda n, d=d: WCFIREnvelope(sfreq, BAND, n, delay_s=d / 1000))
            for d in WCFIR_DELAYS_MS]
    for fs, d in shipped_designs(sfreq, weights_path):
        rows.append((f"learned @{d:+d}ms", "learned", d,
                     lambda n, d=d: LearnedEnvelope(sfreq, BAND, n, delay_s=d / 1000, weights_path=weights_path)))
        rows.append((f"learned +readout @{d:+d}ms", "learned+readout", d,
                     lambda n, d=d: LearnedEnvelope(sfreq, BAND, n, delay_s=d / 1000, fit_readout=True,
                                                    weights_path=weights_path)))
    return rows


def best(fb, truth, sfreq, start):
    """``latency_frontier.best`` (the lag of the highest r, −100…300 ms, one-sample steps) with the
    lag refined between samples by a parabola through the peak and its two neighbours: at 160 Hz
    a sample is 6.25 ms, too coarse to match two estimators' delays. r is the sampled maximum."""
    lags = np.arange(int(np.ceil(LAG_MIN_MS * sfreq / 1000)), int(LAG_MAX_MS * sfreq / 1000) + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = lag_curve(fb, truth, start, lags)
    i = int(np.nanargmax(r))
    frac = 0.0
    if 0 < i < r.size - 1:
        den = r[i - 1] - 2 * r[i] + r[i + 1]
        frac = float(np.clip(0.5 * (r[i - 1] - r[i + 1]) / den, -0.5, 0.5)) if den < 0 else 0.0
    return float((lags[i] + frac) * 1000 / sfreq), float(r[i])


def score(est, x, sfreq, env):
    half = x.size // 2
    if hasattr(est, "fit"):
        est.fit(x[None, :half])
    chunk = 6 if sfreq == 160 else 5
    p = stream(est, x[None].copy(), chunk)[0]
    lag, r = best(np.log10(np.maximum(p, FLOOR_UV2)), np.log10(np.maximum(env ** 2 / 2, FLOOR_UV2)), sfreq, half)
    return {"effective_delay_ms": lag, "r": r}


def matched(wc_points, lag):
    """wcFIR r at effective delay ``lag`` by linear interpolation over its designs (clamped)."""
    pts = sorted(wc_points)
    d = np.array([p[0] for p in pts])
    r = np.array([p[1] for p in pts])
    return float(np.interp(lag, d, r)), bool(lag < d.min() or lag > d.max())


def print_markdown(results):
    """The RESULTS.md table: per record, the wcFIR designs and each learned design with the
    wcFIR's r at its effective delay and the margin."""
    learned = [r["name"] for r in results[0]["rows"] if r["family"] != "wcfir"]
    wc = [r["name"] for r in results[0]["rows"] if r["family"] == "wcfir"]
    print("\n| record | " + " | ".join(n.replace("wcfir ", "wcFIR ") for n in wc) + " | "
          + " | ".join(f"{n}: eff. delay / r (wcFIR r there, margin)" for n in learned) + " |")
    print("|---" * (1 + len(wc) + len(learned)) + "|")
    for rec in results:
        rows = {r["name"]: r for r in rec["rows"]}
        cells = [f"{rows[n]['effective_delay_ms']:.0f} / {rows[n]['r']:.3f}" for n in wc]
        cells += [f"{rows[n]['effective_delay_ms']:.1f} / **{rows[n]['r']:.3f}** ({rows[n]['wcfir_r_matched']:.3f}, "
                  f"{rows[n]['margin_r']:+.3f})" for n in learned]
        print(f"| {rec['record']} | " + " | ".join(cells) + " |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write results here")
    ap.add_argument("--weights", help="another weights file (default: the shipped one)")
    ap.add_argument("--only", help="records whose name contains this")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    results = []
    for name, sfreq, x in test_records():
        if args.only and args.only not in name:
            continue
        env = ideal_envelope(x, sfreq, BAND)
        rec = {"record": name, "sfreq": sfreq, "rows": []}
        for row_name, family, d, make in rows_for(sfreq, args.weights):
            s = score(make(1), x, sfreq, env)
            rec["rows"].append({"name": row_name, "family": family, "design_delay_ms": d, **s})
        wc = [(r["effective_delay_ms"], r["r"], r["name"]) for r in rec["rows"] if r["family"] == "wcfir"]
        for r in rec["rows"]:
            if r["family"] != "wcfir":
                r_wc, extrap = matched([(a, b) for a, b, _ in wc], r["effective_delay_ms"])
                near = min(wc, key=lambda w: abs(w[0] - r["effective_delay_ms"]))
                r.update({"wcfir_r_matched": r_wc, "matched_extrapolated": extrap, "margin_r": r["r"] - r_wc,
                          "nearest_wcfir": {"name": near[2], "effective_delay_ms": near[0], "r": near[1]}})
        results.append(rec)
        print(f"\n{name} ({sfreq:g} Hz)", flush=True)
        for r in rec["rows"]:
            extra = (f"  wcFIR at this delay r {r['wcfir_r_matched']:.3f}{'*' if r['matched_extrapolated'] else ''}"
                     f"  margin {r['margin_r']:+.3f}  (nearest {r['nearest_wcfir']['name']}: "
                     f"{r['nearest_wcfir']['effective_delay_ms']:.1f} ms r {r['nearest_wcfir']['r']:.3f})"
                     if "margin_r" in r else "")
            print(f"  {r['name']:<26s} {r['effective_delay_ms']:6.1f} ms  r {r['r']:.3f}{extra}", flush=True)
    verdict = {}
    for fam in ("learned", "learned+readout"):
        for d in sorted({r["design_delay_ms"] for rec in results for r in rec["rows"] if r["family"] == fam}):
            m = [r["margin_r"] for rec in results for r in rec["rows"] if r["family"] == fam and r["design_delay_ms"] == d]
            verdict[f"{fam} @{d:+d}ms"] = {"min_margin_r": float(min(m)), "mean_margin_r": float(np.mean(m)),
                                           "records": len(m), "beats_everywhere": bool(min(m) >= MARGIN_R)}
    print("\nverdict (margin = learned r - wcFIR r at the same effective delay; default needs >= "
          f"{MARGIN_R} on every record):")
    for k, v in verdict.items():
        print(f"  {k:<28s} min {v['min_margin_r']:+.3f} mean {v['mean_margin_r']:+.3f} "
              f"-> {'beats wcFIR everywhere' if v['beats_everywhere'] else 'does not'}")
    print_markdown(results)
    out = {"records": results, "verdict": verdict, "margin_required_r": MARGIN_R, "band_hz": list(BAND),
           "fit": "first half", "score": "second half", "runtime_s": time.perf_counter() - t0}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    print(f"\n{time.perf_counter() - t0:.0f} s")
    return out


if __name__ == "__main__":
    main()
