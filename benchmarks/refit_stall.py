"""How long acquisition waits at the baseline's end: the refit in the step (before) or in a worker (after).

The live-like session of ``reward_rate.py`` (S001R01 as the 58-s baseline block, then S001R03,
Cyton default montage at 250 Hz, ``action-observation-research``: weighted cFIR, ocular
regression, accuracy curve) fed in 1-sample chunks, paced in real time (one sample every 4 ms),
by a loop that does per chunk what ``Pipeline._run`` does: switch to a finished worker refit
(``control("apply_refit")``) between chunks, then ``step``. Timed per chunk: the switch + the
step (``perf_counter``), and how late the chunk was handled against its real-time due time,
from 2 s before the baseline's end to 6 s after it.

    PYTHONPATH=. python benchmarks/refit_stall.py [--repeats 2] [--json benchmarks/refit_stall.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from benchmarks.reward_rate import DATA, LINE_HZ, live_session, protocol
from neurofeed.live.processor import Processor


def paced(worker: bool, x, ch, fs, marks, before_s=2.0, after_s=6.0) -> dict:
    proc = Processor(protocol("adaptive"), fs, ch, range_uv=187500.0, external=True, line_hz=LINE_HZ)
    proc.refit_in_worker = worker
    base_end = marks[1][0]
    lo, hi = base_end - int(before_s * fs), base_end + int(after_s * fs)
    mk = sorted(marks)
    step_ms, late_ms, idx, switched_at, switch_ms = [], [], [], None, None
    t0 = time.perf_counter()
    for i in range(hi):
        due = t0 + (i - lo) / fs if i >= lo else None
        if due is not None:  # real time from 2 s before the baseline's end (as fast as possible before)
            while time.perf_counter() < due:
                time.sleep(0.0002)
        t_a = time.perf_counter()
        if proc.refit_ready():
            proc.control("apply_refit")
            switched_at = proc.engine.n
            switch_ms = (time.perf_counter() - t_a) * 1e3
        while mk and mk[0][0] <= proc.engine.n:
            proc.control("block_marker", *mk.pop(0))
        proc.step(x[:, i:i + 1])
        t_b = time.perf_counter()
        if due is None:
            t0 = time.perf_counter() + 0.01
            continue
        step_ms.append((t_b - t_a) * 1e3)
        idx.append(i)
        late_ms.append(max(0.0, t_b - due - 1.0 / fs) * 1e3)  # beyond its own 4-ms slot
    s, lt, idx = np.array(step_ms), np.array(late_ms), np.array(idx)
    # the refit's span: from the baseline's end to the switch (in the step: the step that ends it)
    during = (idx >= base_end) & (idx <= (base_end + 1 if switched_at is None else switched_at))
    return {"worker": worker, "step_max_ms": float(s.max()), "step_p99_ms": float(np.percentile(s, 99)),
            "step_p50_ms": float(np.median(s)), "late_max_ms": float(lt.max()),
            "step_max_during_refit_ms": float(s[during].max()), "step_max_outside_refit_ms": float(s[~during].max()),
            "step_max_at_s": float((idx[np.argmax(s)] - base_end) / fs), "switch_ms": switch_ms,
            "late_max_during_refit_ms": float(lt[during].max()), "late_p99_during_refit_ms":
            float(np.percentile(lt[during], 99)), "late_max_outside_refit_ms": float(lt[~during].max()),
            "switch_after_baseline_s": None if switched_at is None else (switched_at - base_end) / fs,
            "baseline_uv2": None if proc.engine.baseline_uv2 is None else proc.engine.baseline_uv2.tolist()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    sys.setswitchinterval(0.0005)  # as Pipeline.start sets it
    x, ch, fs, marks = live_session(3, "cyton", data=args.data)
    rows = []
    for _ in range(args.repeats):
        for worker in (False, True):
            r = paced(worker, x, ch, fs, marks)
            rows.append(r)
            print(f"{'worker' if worker else 'in the step':12s} step max {r['step_max_ms']:7.2f} ms at "
                  f"{r['step_max_at_s']:+.3f} s (outside the refit {r['step_max_outside_refit_ms']:.2f}; switch "
                  f"{r['switch_ms'] or 0:.2f} ms)  p99 "
                  f"{r['step_p99_ms']:5.2f} ms  p50 {r['step_p50_ms']:5.3f} ms  late max during refit "
                  f"{r['late_max_during_refit_ms']:7.2f} ms (p99 {r['late_p99_during_refit_ms']:.2f}), outside "
                  f"{r['late_max_outside_refit_ms']:7.2f} ms  "
                  f"switch +{r['switch_after_baseline_s'] or 0:.3f} s  baseline {r['baseline_uv2']}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
