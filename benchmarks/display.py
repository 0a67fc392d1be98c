"""A long simulated session with both views drawn offscreen: frame latency and memory.

Frame latency = a FeedbackState's publication → the paint of the participant-view frame that
shows it. Memory = the process RSS sampled every 5 s (growth measured after the first minute).

    QT_QPA_PLATFORM=offscreen python benchmarks/display.py --minutes 10 --json benchmarks/display.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import psutil  # noqa: E402

from neurofeed.feedback.display import Views, app  # noqa: E402
from neurofeed.protocol.schema import load_protocol  # noqa: E402
from neurofeed.session import build_session, finish_session  # noqa: E402
from neurofeed.sources.simulated import MuSimulator, SimulatedSource, SimulationScript  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None):
    from PySide6 import QtCore

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    seconds = args.minutes * 60
    proto = load_protocol("action-observation-research")
    scale = (seconds + 30) / proto.total_duration_s()
    script = SimulationScript.alternating(seconds + 60, emg_every_s=30, blink_every_s=15)
    src = SimulatedSource(MuSimulator(script=script, seed=8), realtime=True)
    proc = psutil.Process()
    rss = []
    with tempfile.TemporaryDirectory() as tmp:
        pipe, rec = build_session(src, proto, "BENCH", tmp, scale, lsl=True)
        qapp = app()
        views = Views(pipe)
        views.on_finished = qapp.quit
        mem = QtCore.QTimer()
        mem.timeout.connect(lambda: rss.append(proc.memory_info().rss))
        mem.start(5000)
        pipe.start()
        views.start()
        QtCore.QTimer.singleShot(int(seconds * 1000), lambda: views.stop_session("benchmark complete"))
        qapp.exec()
        summary = finish_session(pipe, rec)
    frames = views.stats.summary()
    warm = np.array(rss[12:] if len(rss) > 13 else rss or [proc.memory_info().rss]) / 2 ** 20  # after the first minute
    out = {"minutes": args.minutes, "frame_ms": frames,
           "memory_mb": {"start": float(warm[0]), "end": float(warm[-1]), "max_growth": float(warm.max() - warm[0])},
           "sample_to_feedback_ms": summary["timing"].get("sample_to_feedback_ms"),
           "compute_us": summary["timing"].get("compute_us")}
    print(f"{args.minutes:g}-min simulated session, both views offscreen")
    print(f"  frame_ms (published -> painted): p50 {frames['p50']:.2f}  p99 {frames['p99']:.2f}  ({frames['frames']} frames)")
    print(f"  memory after the first minute: {warm[0]:.1f} -> {warm[-1]:.1f} MB (max growth {out['memory_mb']['max_growth']:.2f} MB)")
    lag = out["sample_to_feedback_ms"]
    print(f"  sample_to_feedback_ms with the display on: p50 {lag['p50']:.3f}  p99 {lag['p99']:.3f}  max {lag['max']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
