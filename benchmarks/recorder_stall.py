"""Does a stalled disk stall acquisition? The recorder's calls from the acquisition thread, timed.

A live-like session (simulated headset, ``demo`` at ``--seconds-scale 0.2``, 1-sample chunks as a
Cyton sends them, in real time: 12 s) records while the recorder's writer stalls
10 s on its first write (a USB stick, a virus scanner, a network home folder). Every call the
acquisition thread makes into the recorder (``on_chunk``, ``on_state``, ``on_events``) is timed
(``perf_counter``); with ``--cap-bytes`` small the queue also spills to ``spill.bin``.

    PYTHONPATH=. python benchmarks/recorder_stall.py [--repeats 3] [--cap-bytes 256000] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time

import numpy as np

from neurofeed.hardware.sources.simulated import MuSimulator, SimulatedSource
from neurofeed.live.session import build_session, finish_session
from neurofeed.protocol.schema import load_protocol
from neurofeed.recording import writer
from neurofeed.recording.journal import read_journal

STALL_S = 10.0


class Timed:
    """Times every call the acquisition thread makes into the recorder."""

    def __init__(self, rec):
        self.rec, self.calls_s = rec, []

    def _timed(self, fn, arg):
        t = time.perf_counter()
        fn(arg)
        self.calls_s.append(time.perf_counter() - t)

    def on_chunk(self, chunk):
        self._timed(self.rec.on_chunk, chunk)

    def on_state(self, st):
        self._timed(self.rec.on_state, st)

    def on_events(self, events):
        self._timed(self.rec.on_events, events)


def run_once(seed: int) -> dict:
    stalled = threading.Event()
    write = writer.Recorder._write

    def slow(self, name, payload):
        if not stalled.is_set():
            stalled.set()
            time.sleep(STALL_S)
        write(self, name, payload)

    writer.Recorder._write = slow
    try:
        src = SimulatedSource(MuSimulator(seed=seed), realtime=True, chunk_size=1)
        pipe, rec = build_session(src, load_protocol("demo"), "B01", tempfile.mkdtemp(), seconds_scale=0.2,
                                  lsl=False)
        timed = Timed(rec)
        pipe.sinks = [timed if s is rec else s for s in pipe.sinks]
        t0 = time.monotonic()
        pipe.run()
        ran = time.monotonic() - t0
        summary = finish_session(pipe, rec)
        closed = time.monotonic() - t0
    finally:
        writer.Recorder._write = write
    c = np.array(timed.calls_s) * 1e3
    return {"calls": int(c.size), "median_ms": float(np.median(c)), "p99_ms": float(np.percentile(c, 99)),
            "max_ms": float(c.max()), "over_10ms": int((c > 10).sum()), "session_s": ran, "closed_after_s": closed,
            "samples_journaled": int(read_journal(rec.folder).data.shape[1]), "samples_sent": int(pipe.engine.n),
            "behind_events": summary["recording_behind_events"], "max_queued_mb": summary["recording_max_queued_mb"],
            "dropped": summary["recording_dropped_samples"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cap-bytes", type=int, default=None, help="memory cap (default: the recorder's)")
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.cap_bytes:
        writer.MEMORY_CAP_BYTES = args.cap_bytes
    runs = [run_once(seed) for seed in range(args.repeats)]
    for r in runs:
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cap_bytes": writer.MEMORY_CAP_BYTES, "stall_s": STALL_S, "runs": runs}, f, indent=1)


if __name__ == "__main__":
    main()
