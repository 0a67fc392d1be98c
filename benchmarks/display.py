"""A long simulated session with both views drawn: frame latency and memory.

Frame latency = a FeedbackState's publication → the participant-view frame that shows it
painted and flushed to the window system (measured after the synchronous ``repaint`` returns).
Memory = the process RSS sampled every 5 s (growth measured after the first minute).

    QT_QPA_PLATFORM=offscreen python benchmarks/display.py --minutes 10 --json benchmarks/display.json
    python benchmarks/display.py --x11 --minutes 3 --json benchmarks/display-x11.json

``--x11`` starts its own Xvfb server (``apt-get install xvfb`` and the xcb libraries of the
README) and draws real X windows through Qt's xcb platform, tiled side by side on one screen.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def start_xvfb(size="1920x1080x24"):
    """Start Xvfb on a free display; returns (process, ":N")."""
    exe = shutil.which("Xvfb")
    if not exe:
        sys.exit("benchmarks/display.py: --x11 needs Xvfb (sudo apt-get install xvfb).")
    for n in range(90, 120):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            proc = subprocess.Popen([exe, f":{n}", "-screen", "0", size, "-nolisten", "tcp"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(100):  # wait for its socket
                if Path(f"/tmp/.X11-unix/X{n}").exists():
                    return proc, f":{n}"
                if proc.poll() is not None:
                    break
                time.sleep(0.05)
            proc.kill()
    sys.exit("benchmarks/display.py: could not start Xvfb.")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--x11", action="store_true", help="real X windows under a private Xvfb server")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    xvfb = None
    if args.x11:
        xvfb, display = start_xvfb()
        os.environ["DISPLAY"], os.environ["QT_QPA_PLATFORM"] = display, "xcb"
    else:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    try:
        return run(args)
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(5)


def run(args):
    import numpy as np
    import psutil
    from PySide6 import QtCore

    from neurofeed.hardware.sources.simulated import MuSimulator, SimulatedSource, SimulationScript
    from neurofeed.live.session import build_session, finish_session
    from neurofeed.protocol.schema import load_protocol
    from neurofeed.ui.display import Views, app, settle_for_frames, windows_problem

    try:  # interfaces of other branches (Pipeline.control, the new ring reads) where still missing
        from tests.display_helpers import ControlLog, install

        install(ControlLog())
    except ImportError:
        pass
    problem = windows_problem()
    if problem:
        sys.exit(f"benchmarks/display.py: {problem}")
    seconds = args.minutes * 60
    proto = load_protocol("action-observation-research")  # point-light hands animated at ~60 Hz
    scale = (seconds + 30) / proto.total_duration_s()
    script = SimulationScript.alternating(seconds + 60, emg_every_s=30, blink_every_s=15)
    src = SimulatedSource(MuSimulator(script=script, seed=8), realtime=True)
    proc = psutil.Process()
    rss = []
    with tempfile.TemporaryDirectory() as tmp:
        pipe, rec = build_session(src, proto, "BENCH", tmp, scale, lsl=True)
        qapp = app()
        views = Views(pipe, tone=None)
        views.on_finished = qapp.quit
        mem = QtCore.QTimer()
        mem.timeout.connect(lambda: rss.append(proc.memory_info().rss))
        mem.start(5000)
        settle_for_frames()  # as run_windows does
        pipe.start()
        views.start()
        QtCore.QTimer.singleShot(int(seconds * 1000), lambda: views.stop_session("benchmark complete"))
        qapp.exec()
        summary = finish_session(pipe, rec)
    frames = views.stats.summary()
    warm = np.array(rss[12:] if len(rss) > 13 else rss or [proc.memory_info().rss]) / 2 ** 20  # after minute 1
    platform = os.environ["QT_QPA_PLATFORM"]
    out = {"minutes": args.minutes, "platform": platform, "frame_ms": frames,
           "memory_mb": {"start": float(warm[0]), "end": float(warm[-1]), "max_growth": float(warm.max() - warm[0])},
           "compute_to_publish_ms": summary["timing"].get("compute_to_publish_ms"),
           "compute_us": summary["timing"].get("compute_us"), "load_avg": os.getloadavg()}
    where = "real X windows (Xvfb, xcb)" if args.x11 else f"both views, Qt platform {platform}"
    print(f"{args.minutes:g}-min simulated session, {where}; load average {out['load_avg'][0]:.1f}")
    print(f"  frame_ms (published -> painted and flushed): p50 {frames['p50']:.2f}  p99 {frames['p99']:.2f}  "
          f"({frames['frames']} frames)")
    print(f"  memory after the first minute: {warm[0]:.1f} -> {warm[-1]:.1f} MB "
          f"(max growth {out['memory_mb']['max_growth']:.2f} MB)")
    lag = out["compute_to_publish_ms"]
    print(f"  compute_to_publish_ms with the display on: p50 {lag['p50']:.3f}  p99 {lag['p99']:.3f}  max {lag['max']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
