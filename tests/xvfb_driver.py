"""Runs a short simulated session in real X windows (Qt xcb) for test_display's key-press test.

    DISPLAY=:N QT_QPA_PLATFORM=xcb python tests/xvfb_driver.py OUT_DIR

Prints "ready" when both windows are shown, and at the end writes OUT_DIR/result.json with
the ``Pipeline.control`` calls, the recorded events, the window geometries and the frame figures.
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.display_helpers import ControlLog, install  # noqa: E402

log = ControlLog()
install(log)

from PySide6 import QtCore  # noqa: E402

from neurofeed.hardware.sources.simulated import MuSimulator, SimulatedSource, SimulationScript  # noqa: E402
from neurofeed.live.session import build_session, finish_session  # noqa: E402
from neurofeed.protocol.schema import load_protocol  # noqa: E402
from neurofeed.ui import display  # noqa: E402


def main(out):
    out = Path(out)
    proto = load_protocol("demo")
    src = SimulatedSource(MuSimulator(script=SimulationScript.alternating(200), seed=4), realtime=True)
    pipe, rec = build_session(src, proto, "P05", out, seconds_scale=2.0, lsl=False)  # 2 min: ended by Esc
    shown = {}
    start = display.Views.start

    def start_and_report(self):
        start(self)
        shown["participant"] = self.participant.geometry().getRect()
        shown["console"] = self.console.geometry().getRect()

        def ready():  # both windows shown and > 1 s recorded (a BDF can be written): keys may come
            if pipe.published > 40:
                print("ready", flush=True)
            else:
                QtCore.QTimer.singleShot(50, ready)

        QtCore.QTimer.singleShot(0, ready)

    display.Views.start = start_and_report
    display.run_windows(pipe)
    summary = finish_session(pipe, rec)
    events = (rec.folder / "events.jsonl").read_text()
    (out / "result.json").write_text(json.dumps({"calls": log.calls, "events": events, "geometry": shown,
                                                 "frames": pipe.frame_stats, "bdf": summary.get("bdf")}))


if __name__ == "__main__":
    main(sys.argv[1])
