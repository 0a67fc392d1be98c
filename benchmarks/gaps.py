"""Lost packets on real EEG: gated time, reward and dropped counts at 0.1 / 0.5 / 1 % loss.

The live-like sessions of ``reward_rate.py`` (S001R01 as the baseline block, then S001R0x with
its annotations as block markers, Cyton default montage at 250 Hz, ``action-observation-research``
in adaptive mode) with packets lost at random (each sample independently, so runs of 2+ occur
at their natural rate). Offline (the default) the stream goes through the live ``Processor``
in 40-ms chunks cut as BrainFlow hands a gap over (a lost sample arrives as a NaN column
together with the sample after it, never last in its chunk); ``--emulate`` sends it through
``CytonEmulator`` (packets skipped on purpose) and BrainFlow's own Cyton driver instead.

    PYTHONPATH=. python benchmarks/gaps.py [--runs 3 4 5 6] [--loss 0 0.001 0.005 0.01]
        [--estimator wcfir cfir] [--emulate --speed 8] [--max-fill 0] [--psd-floor 0.01] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from benchmarks.reward_rate import DATA, LINE_HZ, Tally, live_session, protocol
from neurofeed.live.processor import Processor
from neurofeed.protocol.schema import Protocol

CHUNK = 10  # samples (40 ms at 250 Hz)


def lost_samples(n: int, loss: float, seed: int, margin: int = 250) -> np.ndarray:
    """Sample indices lost at random with probability ``loss`` each (none in the first and the
    last ``margin`` samples: a loss is seen when the sample after it arrives)."""
    rng = np.random.default_rng(seed)
    k = np.flatnonzero(rng.random(n) < loss)
    return k[(k >= margin) & (k < n - margin)]


def offline(proto: Protocol, x, ch, fs, marks, lost) -> dict:
    """The stream with ``lost`` samples as NaN columns through the live Processor."""
    x = x.copy()
    x[:, lost] = np.nan
    gap = np.zeros(x.shape[1], dtype=bool)
    gap[lost] = True
    proc = Processor(proto, fs, ch, range_uv=187500.0, external=True, line_hz=LINE_HZ)
    tally, mk, pos = Tally(), sorted(marks), 0
    while pos < x.shape[1]:
        end = min(x.shape[1], pos + CHUNK)
        while end < x.shape[1] and gap[end - 1]:
            end += 1
        while mk and mk[0][0] <= proc.engine.n:
            proc.control("block_marker", *mk.pop(0))
        tally.add(proc.step(x[:, pos:end]))
        pos = end
    proc.control("stop", "end of stream")
    res = tally.result(proc)
    res["dropped_samples"] = int(lost.size)
    res["fill_hold_s"] = proc.chain.fill_hold_s
    return res


def emulated(proto: Protocol, x, ch, fs, marks, lost, speed: float = 8.0) -> dict:
    """The same through CytonEmulator (``lost`` packets skipped) and BrainFlow's Cyton driver."""
    from neurofeed.devtools.cyton_emulator import CytonEmulator
    from neurofeed.hardware.boards import get_board
    from neurofeed.hardware.sources.brainflow import BrainFlowSource

    proc = Processor(proto, fs, ch, range_uv=187500.0, external=True, line_hz=LINE_HZ)
    tally, mk, n_total = Tally(), sorted(marks), x.shape[1]
    with CytonEmulator(x, speed=speed, offsets_uv=50_000.0, drift_uv_per_s=5.0, loop=False,
                       drop_packets=lost.tolist()) as emu:
        src = BrainFlowSource(get_board("cyton"), serial_port=emu.port, channel_names=ch)
        src.start()
        t0 = time.monotonic()
        try:
            while proc.engine.n < n_total:
                if time.monotonic() - t0 > 3 * n_total / fs / speed + 60:
                    raise RuntimeError(f"only {proc.engine.n} of {n_total} samples arrived")
                c = src.read()
                if c is None:
                    continue
                while mk and mk[0][0] <= proc.engine.n:
                    proc.control("block_marker", *mk.pop(0))
                tally.add(proc.step(c.data))
        finally:
            src.stop()
    proc.control("stop", "end of stream")
    res = tally.result(proc)
    res["dropped_samples"] = int(src.dropped_samples)
    res["emulator_dropped"] = int(emu.dropped_samples)
    res["fill_hold_s"] = proc.chain.fill_hold_s
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, nargs="+", default=[3, 4, 5, 6])
    ap.add_argument("--loss", type=float, nargs="+", default=[0.0, 0.001, 0.005, 0.01])
    ap.add_argument("--estimator", nargs="+", default=["wcfir"])
    ap.add_argument("--emulate", action="store_true")
    ap.add_argument("--speed", type=float, default=8.0)
    ap.add_argument("--seed", type=int, default=19)
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--max-fill", type=int, default=None,
                    help="longest gap filled (samples); 0 holds every gap as before issue 19")
    ap.add_argument("--psd-floor", type=float, default=None,
                    help="preview of a stop-band floor for the weighted cFIR: its fit weights no lower "
                         "than this fraction of their median (not the shipped fit)")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    if args.psd_floor is not None:
        import neurofeed.dsp.estimators as estimators

        plain = estimators.psd_weights

        def floored(x, sfreq, n_fft=2048):
            w = plain(x, sfreq, n_fft)
            return np.maximum(w, args.psd_floor * np.median(w))

        estimators.psd_weights = floored
    if args.max_fill is not None:
        import neurofeed.dsp.quality as quality

        quality.max_fill_samples = lambda sfreq: args.max_fill
    rows = []
    for est in args.estimator:
        proto = protocol("adaptive")
        proto.signal.estimator = est
        for run in args.runs:
            x, ch, fs, marks = live_session(run, "cyton", data=args.data)
            ref = None
            for loss in args.loss:
                lost = lost_samples(x.shape[1], loss, args.seed + run)
                res = (emulated(proto, x, ch, fs, marks, lost, args.speed) if args.emulate
                       else offline(proto, x, ch, fs, marks, lost))
                ref = res if loss == 0 else ref
                row = {"estimator": est, "run": run, "loss": loss, "lost": int(lost.size), **res}
                if ref is not None:
                    row["reward_change_points"] = 100 * (res["reward_rate"] - ref["reward_rate"])
                rows.append(row)
                print(f"{est:6s} R0{run} loss {100 * loss:4.1f} %  lost {lost.size:4d}  dropped counted "
                      f"{res['dropped_samples']:4d}  gated {100 * res['gated_frac']:5.1f} %  reward "
                      f"{100 * res['reward_rate']:5.1f} %  Δ {row.get('reward_change_points', float('nan')):+5.1f}  "
                      f"fill hold {res['fill_hold_s']}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1, default=float)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
