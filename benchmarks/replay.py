"""Replay throughput: chunk-faithful replay (live chunk sizes) through the full pipeline code.

8 channels at 250 Hz, 10-sample chunks (40 ms, the simulated headset's and the file source's live
chunk): (1) an EDF file from another system, annotations as conditions, baseline from a label, in
``causal`` mode (the live Processor chunk by chunk) and ``offline`` mode (two passes, pooled
baseline); (2) a neurofeed session folder replayed bit-exactly with its own protocol. Then the
real EEGMMIDB S001 R03–R06 (64 channels, 160 Hz) in both modes: speed and the fists-vs-feet SI.
``realtime_factor`` = seconds of data / wall-clock seconds of processing (file reading excluded;
reported separately). BrainFlow's playback board and MNE-LSL's player replay at 1× by design.

    python benchmarks/replay.py --json benchmarks/replay.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from neurofeed.analysis.replay import replay_file, replay_journal  # noqa: E402
from neurofeed.hardware.sources.simulated import MuSimulator, SimulatedSource, SimulationScript  # noqa: E402
from neurofeed.live.session import build_session, finish_session  # noqa: E402
from neurofeed.protocol.schema import PROTOCOL_DIR, load_protocol  # noqa: E402

NAMES = ["C3", "C4", "FC3", "C5", "C1", "CP3", "FC4", "CP4"]


def make_edf(path, seconds):
    from edfio import Edf, EdfAnnotation, EdfSignal

    script = SimulationScript.alternating(seconds, period_s=10, suppress_s=5, factor=0.6, start_s=5)
    data, _ = MuSimulator(250.0, ch_names=NAMES, script=script, seed=2).generate(int(seconds * 250))
    ann = [EdfAnnotation(float(t), 5.0, "rest") for t in np.arange(0, seconds - 5, 10)]
    ann += [EdfAnnotation(float(t), 5.0, "observe") for t in np.arange(5, seconds - 5, 10)]
    Edf([EdfSignal(row, 250.0, label=n, physical_dimension="uV", physical_range=(-4000, 4000)) for n, row in
         zip(NAMES, data)], annotations=ann).write(path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json")
    ap.add_argument("--minutes", type=float, default=30.0)
    args = ap.parse_args(argv)
    seconds = args.minutes * 60
    proto = load_protocol(PROTOCOL_DIR / "action-observation-research.toml")
    out = {"channels": len(NAMES), "sfreq": 250.0, "chunk_samples": 10, "data_s": seconds}
    with tempfile.TemporaryDirectory() as tmp:
        edf = Path(tmp) / "sim.edf"
        make_edf(edf, seconds)
        from neurofeed.hardware.sources.edf import FileSource

        t = time.perf_counter()
        FileSource(edf)
        read_s = time.perf_counter() - t
        for mode in ("causal", "offline"):
            # throughput, not the SI: whatever the simulated file's first rest holds is accepted
            res = replay_file(edf, proto, baseline_label="rest", chunk_size=10, mode=mode, min_baseline_s=0)
            out[f"file_{mode}"] = {"read_s": read_s, "process_s": res["process_s"],
                                   "realtime_factor": seconds / res["process_s"],
                                   "realtime_factor_with_read": seconds / (res["process_s"] + read_s),
                                   "updates": int(len(res["feedback"]))}
        # a neurofeed session folder, recorded live (simulated, as fast as possible), replayed exactly
        script = SimulationScript.alternating(seconds + 60)
        src = SimulatedSource(MuSimulator(250.0, ch_names=NAMES, script=script, seed=3), realtime=False,
                              duration_s=seconds)
        pipe, rec = build_session(src, proto, "BENCH", tmp, seconds / proto.total_duration_s(), lsl=False)
        pipe.run()
        finish_session(pipe, rec)
        t = time.perf_counter()
        r2 = replay_journal(rec.folder)
        j_s = time.perf_counter() - t
        out["journal"] = {"process_s": j_s, "realtime_factor": seconds / j_s,
                          "bit_exact": bool(np.array_equal(r2["recorded"], r2["feedback"], equal_nan=True))}
    out["realtime_factor"] = min(out["file_causal"]["realtime_factor"], out["journal"]["realtime_factor"])
    from benchmarks.eeg_data import EEGMMIDB as data
    if data.exists():  # real EEG: 64 channels at 160 Hz, 6-sample chunks
        for mode in ("causal", "offline"):
            rows, total_s, proc_s = {}, 0.0, 0.0
            for run in ("03", "04", "05", "06"):
                # causal: the first T0 (4.2 s) is below min_clean_s; the throughput figure keeps it
                res = replay_file(data / f"S001R{run}.edf", proto, baseline_label="T0", mode=mode, min_baseline_s=0)
                total_s += res["data_s"]
                proc_s += res["process_s"]
                rows[run] = {k: [round(v["si"]["C3"], 3), round(v["si"]["C4"], 3)] for k, v in res["conditions"].items()}
            out[f"s001_{mode}"] = {"realtime_factor": total_s / proc_s, "si_C3_C4": rows}
    print(f"replay of {args.minutes:g} min, 8 ch at 250 Hz, 10-sample chunks")
    for mode in ("causal", "offline"):
        f = out[f"file_{mode}"]
        print(f"  EDF file, {mode:<8s} {f['realtime_factor']:8.0f}x real time ({f['realtime_factor_with_read']:.0f}x with reading)")
    print(f"  session journal:  {out['journal']['realtime_factor']:8.0f}x real time, bit-exact: {out['journal']['bit_exact']}")
    for mode in ("causal", "offline"):
        if f"s001_{mode}" in out:
            s = out[f"s001_{mode}"]
            print(f"  S001 R03-R06 {mode:<8s} {s['realtime_factor']:6.0f}x real time; SI (C3, C4): {s['si_C3_C4']}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
