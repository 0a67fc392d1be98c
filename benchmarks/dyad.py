"""Cost of the dyad coupling in the acquisition threads, and a simulated dyad session end to end.

    .venv/bin/python benchmarks/dyad.py --json benchmarks/dyad.json

1. DyadMonitor alone: two simulated people (250 Hz, 10-sample chunks, 10-s window, one
   coupling value per 0.1 s): microseconds per coupling update and per chunk handed over.
2. The dyadic-resonance protocol on two simulated headsets in partner mode, unpaced (as fast as
   both pipelines compute), seconds_scale 0.2 (144 s of signal each): wall time, updates, and
   the AUC of the coupling index between scripted coupled and uncoupled 10-s windows.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from scipy.stats import mannwhitneyu


def monitor_cost(seconds: float = 120.0) -> dict:
    from neurofeed.dyad.monitor import DyadMonitor, SharedMuDrive, alternating_windows
    from neurofeed.hardware.sources.simulated import MuSimulator

    fs = 250.0
    drive = SharedMuDrive(fs, seconds + 5, alternating_windows(seconds, 20.0), seed=1)
    sims = [MuSimulator(fs, seed=1), MuSimulator(fs, seed=2)]
    drive.attach(sims[0], 0.0)
    drive.attach(sims[1], 0.5)
    rows = [sims[0].ch_names.index(c) for c in ("C3", "C4")]
    chunks = [[s.generate(10)[0][rows].mean(axis=0) for _ in range(int(seconds * fs / 10))] for s in sims]
    mon = DyadMonitor(fs, window_s=10.0)
    t0 = time.perf_counter()
    for k, (xa, xb) in enumerate(zip(*chunks)):
        mon.add("a", xa, k * 10 / fs)
        mon.add("b", xb, k * 10 / fs)
    dt = time.perf_counter() - t0
    return {"signal_s": seconds, "updates": len(mon.rows), "us_per_update": 1e6 * dt / len(mon.rows),
            "us_per_chunk_pair": 1e6 * dt / len(chunks[0])}


def session_run(scale: float = 0.2) -> dict:
    import tempfile

    from neurofeed.dyad.session import build_dyad_session, simulated_partner_drive
    from neurofeed.live.session import open_source
    from neurofeed.protocol.schema import load_protocol

    p = load_protocol("dyadic-resonance")
    a = open_source("simulated", protocol=p, seconds_scale=scale, realtime=False, seed=1)
    b = open_source("simulated", protocol=p, seconds_scale=scale, realtime=False, seed=2)
    drive = simulated_partner_drive(a, b, p, scale)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        s = build_dyad_session(a, b, p, ("P01", "P02"), tmp, scale, lsl=False, drive=drive)
        s.start()
        s.wait()
        s.finish()
        wall = time.perf_counter() - t0
    res = np.array(s.monitor.rows)
    t, idx = res[:, 0], res[:, 3]
    look = np.linspace(-9.9, -0.1, 25)
    on = np.array([drive.coupled(v + look).all() for v in t]) & np.isfinite(idx)
    off = np.array([not drive.coupled(v + look).any() for v in t]) & np.isfinite(idx)
    auc = float(mannwhitneyu(idx[on], idx[off]).statistic / (on.sum() * off.sum()))
    return {"signal_s_each": p.total_duration_s() * scale, "wall_s": wall, "updates": len(res),
            "auc_on_vs_off": auc, "median_index_on": float(np.median(idx[on])),
            "median_index_off": float(np.median(idx[off]))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    args = ap.parse_args()
    out = {"monitor": monitor_cost(), "session": session_run()}
    print(json.dumps(out, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
