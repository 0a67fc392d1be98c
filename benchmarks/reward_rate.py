"""Realised reward rate and gated time on real EEG, replayed causally (sample for sample as live).

Two ways to give EEGMMIDB S001 R03–R06 a baseline (``--baseline``):

``rest-run`` (default; a live session)
    One continuous stream per session: the participant's own eyes-open rest run S001R01 (60 s) is
    the protocol's baseline block, then R0x follows sample for sample as the training part, its
    annotations as external block markers at their onset samples: T0 (rest between trials) is
    the protocol's ``rest`` block (consolidation, no feedback), T1/T2 are feedback blocks. The
    join of the two recordings is a step of 17–165 µV a real session does not have: the baseline
    block ends 2 s before it (R01's last 2 s are rest), and every run starts with a 4.2-s T0, so
    the join falls in no-feedback rest and the conditioning high-pass (0.5 Hz) and the estimator
    (2-s taps) settle before the first feedback block. The first feedback block's gated time is reported apart (``gated_first``) to show it.
``first-t0``
    The run alone, its first T0 segment (4.2 s) as the baseline: far shorter than a protocol's
    60–120-s baseline (kept for comparison).

Montages (``--montage``): ``full`` (64 ch at 160 Hz, the protocol's Laplacian) and ``cyton``
(BrainFlow's default Cyton montage Fp1 Fp2 C3 C4 P7 P8 O1 O2 resampled to 250 Hz with
``edf_signal``, where the protocol falls back to the common average). ``--emulate`` sends the
Cyton stream through ``CytonEmulator`` and BrainFlow's own driver (±50 mV offsets with drift;
chunks as BrainFlow hands them over) instead of cutting it into 40-ms chunks.

    PYTHONPATH=. python benchmarks/reward_rate.py [--montage full cyton] [--baseline rest-run|first-t0]
        [--emulate --speed 8 --offset-uv 50000] [--chunk-s 0.04] [--add-offsets] [--smoothing 0.3] [--no-artifact-gates] [--json out.json]
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.eeg_data import EEGMMIDB as DATA
from neurofeed.devtools.cyton_emulator import edf_signal, montage_names
from neurofeed.hardware.sources.edf import read_raw
from neurofeed.live.processor import Processor
from neurofeed.protocol.schema import load_protocol

RUNS = (3, 4, 5, 6)
LINE_HZ = 60.0  # EEGMMIDB was recorded in the USA
CHUNK_S = 0.04  # live-sized chunks (10 samples at 250 Hz)
#: The baseline block ends this long before the join of R01 and R0x (s; see live_session)
JOIN_MARGIN_S = 2.0
#: EEGMMIDB annotation -> the protocol block it plays in the live-like session
BLOCK_OF = {"T0": "rest", "T1": "T1", "T2": "T2"}


def load_run(path, montage: str):
    """(data µV, channel names, sfreq, [(onset_s, label)]) of one EEGMMIDB run on ``montage``."""
    raw = read_raw(path)
    ann = [(float(a["onset"]), str(a["description"])) for a in raw.annotations]
    if montage == "cyton":
        names = montage_names("cyton", "default")
        return edf_signal(path, names, 250.0), names, 250.0, ann
    return np.ascontiguousarray(raw.get_data() * 1e6), list(raw.ch_names), float(raw.info["sfreq"]), ann


def live_session(run: int, montage: str, data=DATA, baseline_s: float | None = None):
    """One continuous stream: S001R01 (the baseline block) followed by S001R0``run``.

    ``baseline_s`` keeps only the last ``baseline_s`` seconds of R01 before the margin (a shorter
    baseline, e.g. the ``demo`` protocol's 15 s). The baseline block is R01 but its last ``JOIN_MARGIN_S`` (58 s): an update (chunk) that
    straddles the end of the baseline block counts in the baseline whole, and with irregular
    chunks (BrainFlow hands over 1–30 samples at a time) one holding the first samples of R0x
    put the join's step — through the weighted cFIR, 6256 µV² against ~16 — into the baseline
    (C3 24–30 µV² instead of 15.6; see benchmarks/RESULTS.md).

    Returns
    -------
    x : ndarray (n_channels, n_samples), µV
    ch_names : list of str
    sfreq : float
    marks : list of (onset_sample, label)
        Block markers: ``baseline`` at 0, then R0x's annotations as protocol blocks.
    """
    rest, ch, fs, _ = load_run(Path(data) / "S001R01.edf", montage)
    if baseline_s is not None:  # a shorter baseline: the last baseline_s of R01 before the margin
        rest = rest[:, -int(round((baseline_s + JOIN_MARGIN_S) * fs)):]
    x, _, _, ann = load_run(Path(data) / f"S001R0{run}.edf", montage)
    n0 = rest.shape[1]
    # the baseline block ends JOIN_MARGIN_S before the join (its last 2 s are rest, no feedback),
    # so that no baseline update, however the stream is chunked, holds samples of the join
    marks = [(0, "baseline"), (n0 - int(round(JOIN_MARGIN_S * fs)), "rest")]
    marks += [(n0 + int(round(on * fs)), BLOCK_OF[lab]) for on, lab in ann]
    return np.ascontiguousarray(np.concatenate([rest, x], axis=1)), ch, fs, marks


def first_t0_session(run: int, montage: str, data=DATA):
    """The run alone: its first T0 segment is the baseline, later T0s are rest, T1/T2 feedback."""
    x, ch, fs, ann = load_run(Path(data) / f"S001R0{run}.edf", montage)
    marks = [(int(round(on * fs)), "baseline" if i == 0 else BLOCK_OF[lab]) for i, (on, lab) in enumerate(ann)]
    return x, ch, fs, marks


def run_stream(proto, x, ch, fs, marks, chunk_s=CHUNK_S):
    """Feed the stream through the live ``Processor`` in ``chunk_s`` chunks; block markers are
    applied at the first chunk boundary at or after their onset (stamped at the onset)."""
    proc = Processor(proto, fs, ch, range_uv=187500.0, external=True, line_hz=LINE_HZ)
    step = max(1, int(round(chunk_s * fs)))
    tally = Tally()
    marks = sorted(marks)
    for s in range(0, x.shape[1], step):
        while marks and marks[0][0] <= proc.engine.n:
            proc.control("block_marker", *marks.pop(0))
        tally.add(proc.step(x[:, s:s + step]))
    proc.control("stop", "end of stream")
    return tally.result(proc)


def emulate_stream(protos, x, ch, fs, marks, speed=8.0, offset_uv=50_000.0, drift_uv_per_s=5.0):
    """The same stream sent by ``CytonEmulator`` (``speed`` × real time, ±``offset_uv`` electrode
    offsets drifting ``drift_uv_per_s``) and read by BrainFlow's Cyton driver; each chunk BrainFlow
    hands over goes to one ``Processor`` per protocol in ``protos`` (e.g. both threshold modes
    on the same session), as the live loop does. Returns one result per protocol."""
    from neurofeed.devtools.cyton_emulator import CytonEmulator
    from neurofeed.hardware.boards import get_board
    from neurofeed.hardware.sources.brainflow import BrainFlowSource

    procs = [Processor(p, fs, ch, range_uv=187500.0, external=True, line_hz=LINE_HZ) for p in protos]
    tallies = [Tally() for _ in procs]
    pending = [sorted(marks) for _ in procs]
    n_total = x.shape[1]
    with CytonEmulator(x, speed=speed, offsets_uv=offset_uv, drift_uv_per_s=drift_uv_per_s, loop=False) as emu:
        src = BrainFlowSource(get_board("cyton"), serial_port=emu.port, channel_names=ch)
        src.start()
        t0 = time.monotonic()
        try:
            while procs[0].engine.n < n_total:
                if time.monotonic() - t0 > 3 * n_total / fs / speed + 60:
                    raise RuntimeError(f"only {procs[0].engine.n} of {n_total} samples arrived")
                c = src.read()
                if c is None:
                    continue
                for proc, tally, mk in zip(procs, tallies, pending):
                    while mk and mk[0][0] <= proc.engine.n:
                        proc.control("block_marker", *mk.pop(0))
                    tally.add(proc.step(c.data))
        finally:
            src.stop()
    out = []
    for proc, tally in zip(procs, tallies):
        proc.control("stop", "end of stream")
        res = tally.result(proc)
        res["dropped_samples"] = int(src.dropped_samples)
        out.append(res)
    return out


def with_offsets(x, fs, offset_uv=50_000.0, drift_uv_per_s=5.0):
    """``x`` as the emulated Cyton sends it: electrode offsets ``+o, -o, ...`` drifting at
    ``drift_uv_per_s`` (µV/s), quantised to the ADS1299's step (gain 24)."""
    from neurofeed.devtools.cyton_emulator import UV_PER_COUNT

    sign = np.where(np.arange(x.shape[0]) % 2 == 0, 1.0, -1.0)[:, None]
    t = np.arange(x.shape[1]) / fs
    return np.ascontiguousarray(np.round((x + sign * (offset_uv + drift_uv_per_s * t)) / UV_PER_COUNT) * UV_PER_COUNT)


class Tally:
    """Gate reasons over feedback time, and the first feedback block's gated share."""

    def __init__(self):
        self.reasons = collections.Counter()
        self.n_fb = 0

    def add(self, st):
        if st.feedback_on:
            self.n_fb += 1
            self.reasons.update(st.gate_reasons)

    def result(self, proc):
        sm = proc.summary()
        fb = [b for b in sm["blocks"] if b["feedback"] and b["reward_rate"] is not None]
        first = fb[0] if fb else None
        return {"reward_rate": sm["reward_rate"], "gated_frac": sm["gated_s"] / max(sm["feedback_s"], 1e-9),
                "feedback_s": sm["feedback_s"], "threshold_final": sm["threshold_final"]["up"],
                "gated_first": None if first is None else first["gated_s"] / max(first["end_s"] - first["start_s"], 1e-9),
                "gate_reasons": {k: v / max(self.n_fb, 1) for k, v in self.reasons.items()},
                "reference_used": proc.reference_used, "baseline_uv2": sm["baseline_uv2"],
                "baseline_excluded_s": sm["baseline_excluded_s"]}


def protocol(mode: str, smoothing=None, no_gates=False, adapt_rate=None):
    """``action-observation-research`` in ``mode`` (percentile 35 % or adaptive, target 60 %)."""
    p = load_protocol("action-observation-research")
    p.threshold.mode = mode
    if no_gates:
        p.inhibits.emg_uv = p.inhibits.blink_uv = 0.0
    if adapt_rate is not None:
        p.threshold.adapt_rate_per_s = adapt_rate
    if smoothing is not None:
        p.feedback.smoothing_s = smoothing
    return p


def target_pct(p) -> float:
    return p.threshold.baseline_reward_pct if p.threshold.mode == "percentile" else p.threshold.target_reward_pct


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--montage", nargs="+", default=["full", "cyton"], choices=["full", "cyton"])
    ap.add_argument("--baseline", default="rest-run", choices=["rest-run", "first-t0"],
                    help="rest-run: S001R01 then the run (live-like); first-t0: the run's first T0 segment")
    ap.add_argument("--baseline-s", type=float, default=None,
                    help="rest-run: use only the last BASELINE_S seconds of R01 as the baseline")
    ap.add_argument("--runs", type=int, nargs="+", default=list(RUNS))
    ap.add_argument("--modes", nargs="+", default=["percentile", "adaptive"])
    ap.add_argument("--emulate", action="store_true", help="through CytonEmulator + BrainFlow (cyton montage)")
    ap.add_argument("--speed", type=float, default=8.0, help="emulator time compression")
    ap.add_argument("--offset-uv", type=float, default=50_000.0, help="emulated electrode offsets (±µV)")
    ap.add_argument("--chunk-s", type=float, default=CHUNK_S, help="replay chunk length (s)")
    ap.add_argument("--add-offsets", action="store_true",
                    help="replay: add the emulator's ±offset-uv offsets, 5 µV/s drift and Cyton quantisation")
    ap.add_argument("--smoothing", type=float, default=None, help="[feedback] smoothing_s (default: the protocol's)")
    ap.add_argument("--no-artifact-gates", action="store_true", help="emg_uv = blink_uv = 0")
    ap.add_argument("--adapt-rate", type=float, default=None, help="[threshold] adapt_rate_per_s")
    ap.add_argument("--data", default=str(DATA), help="folder holding S001R01.edf .. S001R06.edf")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    if args.baseline == "rest-run":
        def make(r, montage, data):
            return live_session(r, montage, data, args.baseline_s)
    else:
        make = first_t0_session
    out = {}
    for montage in args.montage:
        streams = {r: make(r, montage, args.data) for r in args.runs}
        if args.add_offsets and not args.emulate:
            streams = {r: (with_offsets(x, fs, args.offset_uv), ch, fs, marks)
                       for r, (x, ch, fs, marks) in streams.items()}
        protos = {mode: protocol(mode, args.smoothing, args.no_artifact_gates, args.adapt_rate) for mode in args.modes}
        rows = {mode: {} for mode in args.modes}
        for r, (x, ch, fs, marks) in streams.items():
            if args.emulate:  # one emulated session, one Processor per mode
                res = emulate_stream([copy.deepcopy(p) for p in protos.values()], x, ch, fs, marks,
                                     args.speed, args.offset_uv)
                for mode, v in zip(protos, res):
                    rows[mode][f"R0{r}"] = v
            else:
                for mode, p in protos.items():
                    rows[mode][f"R0{r}"] = run_stream(copy.deepcopy(p), x, ch, fs, marks, args.chunk_s)
        for mode, p in protos.items():
            rr = np.array([v["reward_rate"] for v in rows[mode].values()])
            gf = np.array([v["gated_frac"] for v in rows[mode].values()])
            g1 = np.array([v["gated_first"] for v in rows[mode].values()])
            out[f"{montage}/{mode}"] = {"runs": rows[mode], "mean_reward_pct": 100 * rr.mean(),
                                        "max_gated_pct": 100 * gf.max(), "target_pct": target_pct(p),
                                        "baseline": args.baseline, "emulated": args.emulate,
                                        "speed": args.speed if args.emulate else None,
                                        "chunk_s": None if args.emulate else args.chunk_s,
                                        "offsets": args.emulate or args.add_offsets,
                                        "smoothing_s": p.feedback.smoothing_s, "hold_s": p.threshold.hold_s}
            ref = next(iter(rows[mode].values()))["reference_used"]
            base = next(iter(rows[mode].values()))["baseline_uv2"]
            print(f"{montage:5s} {ref:9s} {mode:10s} baseline C3 {base['C3']:.2f} C4 {base['C4']:.2f} µV²  target {target_pct(p):.0f} %  reward "
                  + " ".join(f"{100 * v:5.1f}" for v in rr) + f"  (mean {100 * rr.mean():.1f})  gated "
                  + " ".join(f"{100 * v:4.1f}" for v in gf) + " %  first fb block gated "
                  + " ".join(f"{100 * v:4.1f}" for v in g1) + " %", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
