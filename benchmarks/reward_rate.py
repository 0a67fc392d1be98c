"""Realised reward rate and gated time on real EEG, replayed causally (sample for sample as live).

Each EEGMMIDB S001 run (R03–R06) goes through the live Processor in 40-ms chunks; its annotations
act as external block markers at their onset samples: the first T0 (rest) segment is the baseline
(as live: the baseline is what came before), T1/T2 are feedback blocks. Reported per mode:
reward rate in feedback blocks (rewarded / feedback time) and the share of feedback time gated.

    PYTHONPATH=. python benchmarks/reward_rate.py [--smoothing 0.3] [--no-artifact-gates] [--json out.json]
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import numpy as np

from neurofeed.pipeline import Processor
from neurofeed.protocol.schema import load_protocol
from neurofeed.sources.edf import FileSource

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "eegmmidb-S001"


def run_file(path, proto):
    src = FileSource(path)
    proc = Processor(proto, src.sfreq, src.ch_names, src.range_uv, external=True)
    eng = proc.engine
    marks = sorted((int(round(on * src.sfreq)), lab) for on, _, lab in src.annotations)
    step, n_total = src.chunk_size, src.data.shape[1]
    for s in range(0, n_total, step):
        while marks and marks[0][0] <= eng.n:
            onset, label = marks.pop(0)
            proc.control("block_marker", onset, label)
        proc.step(src.data[:, s:s + step])
    proc.control("stop", "end of file")
    sm = eng.summary()
    return {"reward_rate": sm["reward_rate"], "gated_frac": sm["gated_s"] / max(sm["feedback_s"], 1e-9),
            "feedback_s": sm["feedback_s"], "threshold_final": sm["threshold_final"]["up"]}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoothing", type=float, default=None, help="[feedback] smoothing_s (default: the protocol's)")
    ap.add_argument("--no-artifact-gates", action="store_true",
                    help="emg_uv = blink_uv = 0: the engine's own behaviour, whatever the gates do")
    ap.add_argument("--adapt-rate", type=float, default=None, help="[threshold] adapt_rate_per_s")
    ap.add_argument("--data", default=str(DATA), help="folder holding S001R03.edf .. S001R06.edf")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    base = load_protocol("action-observation-research")
    base.baseline.block = "T0"
    if args.no_artifact_gates:
        base.inhibits.emg_uv = base.inhibits.blink_uv = 0.0
    if args.adapt_rate is not None:
        base.threshold.adapt_rate_per_s = args.adapt_rate
    if args.smoothing is not None:
        base.feedback.smoothing_s = args.smoothing
    out = {}
    for mode in ("percentile", "adaptive"):
        proto = copy.deepcopy(base)
        proto.threshold.mode = mode
        rows = {}
        for r in (3, 4, 5, 6):
            rows[f"R0{r}"] = run_file(Path(args.data) / f"S001R0{r}.edf", proto)
        rr = np.array([v["reward_rate"] for v in rows.values()])
        gf = np.array([v["gated_frac"] for v in rows.values()])
        target = proto.threshold.baseline_reward_pct if mode == "percentile" else proto.threshold.target_reward_pct
        out[mode] = {"runs": rows, "mean_reward_pct": 100 * rr.mean(), "mean_gated_pct": 100 * gf.mean(),
                     "target_pct": target, "smoothing_s": proto.feedback.smoothing_s,
                     "hold_s": proto.threshold.hold_s}
        print(f"{mode:10s} smoothing {proto.feedback.smoothing_s:.2f} s hold {proto.threshold.hold_s:.2f} s  "
              f"target {target:.0f} %  reward " + " ".join(f"{100 * x:5.1f}" for x in rr) +
              f"  (mean {100 * rr.mean():.1f} %)  gated " + " ".join(f"{100 * x:4.0f}" for x in gf) + " %")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
