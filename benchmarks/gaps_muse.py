"""A Muse over LSL losing packets, offline: gated time, reward and the fill's SI error.

The Muse session of ``tests/test_muse_lsl.py`` without the real-time wait: S001R03 as the
emulated Muse sends it (:func:`neurofeed.devtools.muse_emulator.muse_signal`: TP9 AF7 AF8 TP10 and the
AUX electrode from C3, 256 Hz) in 12-sample chunks with per-sample timestamps, through the LSL
source's own timeline (:class:`neurofeed.hardware.sources.lsl.StampTimeline`: gaps from the timestamps,
a drifting clock measured and resampled) into the live ``Processor`` running ``muse-c3-gentle``
in adaptive mode (target 50 %) at ``--scale`` 0.15. Each chunk is lost with probability
``--lose-chunks`` % (seed ``--seed``); ``--drift`` % is the source clock's rate error.

The SI error of the fill: the same session without drift run twice on the same chunks, once
with every chunk and once with the lost ones as gaps; the mean |ΔSI| (combined, unsmoothed, per
chunk) over the chunks that hold a gap (filled, or held where it is too long) and the 0.25 s after it, over all feedback, and
by time after the fill; chunks are lost there only after the baseline, so that both runs are
calibrated alike and what differs is the fills alone.

    PYTHONPATH=. python benchmarks/gaps_muse.py [--lose-chunks 1] [--drift 0.5] [--seeds 7 8 9]
        [--max-fill 0] [--json out.json]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from benchmarks.eeg_data import EEGMMIDB
from neurofeed.devtools.muse_emulator import MUSE_CHUNK, muse_signal
from neurofeed.hardware.sources.lsl import StampTimeline
from neurofeed.live.processor import Processor
from neurofeed.protocol.schema import parse_protocol

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
CH = ["TP9", "AF7", "AF8", "TP10", "C3"]
FS = 256.0


def muse_protocol(target_pct: float = 50.0, memory: str | None = None):
    """muse-c3-gentle in adaptive mode; ``memory`` (``--memory-s``) replaces its [signal] memory_s
    (a number of seconds, or "none": the plain 2-s design; None: the protocol's own)."""
    text = (ROOT / "protocols" / "muse-c3-gentle.toml").read_text()
    text = text.replace('mode = "percentile"\nbaseline_reward_pct = 50',
                        f'mode = "adaptive"\ntarget_reward_pct = {target_pct:g}')
    if memory is not None:
        text = "\n".join(line for line in text.splitlines() if not line.startswith("memory_s"))
        if memory != "none":
            text = text.replace('estimator = "wcfir"', f'estimator = "wcfir"\nmemory_s = {float(memory):g}')
    return parse_protocol(text, "muse-c3-gentle (adaptive)")


def baseline_end_s(scale: float) -> float:
    """Session time (s) at which the protocol's baseline block ends, plus a second."""
    t = 0.0
    for b in muse_protocol().schedule():
        t += b.duration_s * scale
        if b.label == "baseline":
            return t + 1.0
    raise ValueError("no baseline block")


def session(x, lost_chunks, drift_pct: float, scale: float, gaps: bool = True, memory: str | None = None) -> dict:
    """One session; ``lost_chunks``: indices of the 12-sample chunks never sent."""
    proc = Processor(muse_protocol(memory=memory), FS, CH, 187500.0, scale, line_hz=60.0)
    tl = StampTimeline(FS)
    rate = FS * (1 + drift_pct / 100.0)  # the source clock's actual rate
    lost = set(int(i) for i in lost_chunks)
    si, fb, filled, gated = [], [], [], []
    n_chunks = x.shape[1] // MUSE_CHUNK
    for i in range(n_chunks):
        if proc.engine.finished:
            break
        if i in lost:  # never sent; without ``gaps`` it arrives with the next chunk (the same steps)
            continue
        first = i - 1 if (i - 1 in lost and not gaps) else i
        k = np.arange(first * MUSE_CHUNK, (i + 1) * MUSE_CHUNK)
        data, _, gap = tl.push(x[:, k].copy(), 1000.0 + k / rate)
        if data.shape[1] == 0:
            continue
        st = proc.step(data)
        si.append(st.si_combined)
        fb.append(st.feedback_on)
        filled.append(gap is not None and bool(gap.any()))  # the chunk holds lost samples (filled or held)
        gated.append(st.gated)
    proc.control("stop", "end of stream")
    sm = proc.summary()
    return {"reward_rate": sm["reward_rate"], "gated_frac": sm["gated_s"] / max(sm["feedback_s"], 1e-9),
            "feedback_s": sm["feedback_s"], "dropped_samples": tl.dropped_samples,
            "fill_hold_s": proc.chain.fill_hold_s, "si": np.array(si), "feedback": np.array(fb),
            "filled": np.array(filled), "gated": np.array(gated)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lose-chunks", type=float, default=1.0)
    ap.add_argument("--drift", type=float, default=0.5)
    ap.add_argument("--scale", type=float, default=0.15)
    ap.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    ap.add_argument("--max-fill", type=int, default=None, help="longest gap filled (samples), for the before row")
    ap.add_argument("--memory-s", help="the protocol's [signal] memory_s instead of its own (a number, or none)")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    if args.max_fill is not None:
        import neurofeed.dsp.quality as quality

        quality.max_fill_samples = lambda sfreq: args.max_fill
    x, _ = muse_signal(EEGMMIDB / "S001R03.edf")
    n_chunks = x.shape[1] // MUSE_CHUNK
    rows = []
    for seed in args.seeds:
        rng = np.random.default_rng(seed)
        lost = np.flatnonzero(rng.random(n_chunks) < args.lose_chunks / 100.0)
        lost = lost[lost > 5 * FS / MUSE_CHUNK]  # none in the first 5 s (the stream's start)
        clean = session(x, [], args.drift, args.scale, memory=args.memory_s)
        lossy = session(x, lost, args.drift, args.scale, memory=args.memory_s)
        # the SI error: the same chunks without drift, with and without the losses after the
        # baseline (the same calibration: what differs is the fills alone)
        after_baseline = lost[lost > baseline_end_s(args.scale) * FS / MUSE_CHUNK]
        ref = session(x, after_baseline, 0.0, args.scale, gaps=False, memory=args.memory_s)
        gap = session(x, after_baseline, 0.0, args.scale, gaps=True, memory=args.memory_s)
        n = min(ref["si"].size, gap["si"].size)
        ok = ref["feedback"][:n] & gap["feedback"][:n] & np.isfinite(ref["si"][:n]) & np.isfinite(gap["si"][:n])
        near = np.zeros(n, dtype=bool)
        after = int(np.ceil(0.25 * FS / MUSE_CHUNK))
        for j in np.flatnonzero(gap["filled"][:n]):
            near[j:j + after + 1] = True
        d = np.abs(gap["si"][:n] - ref["si"][:n])
        # mean |ΔSI| by time after a fill (chunks of 12 samples), the measured disturbance
        fills = np.flatnonzero(gap["filled"][:n] & ok)
        lags = np.arange(0, int(1.0 * FS / MUSE_CHUNK) + 1)
        by_lag = [float(np.mean([d[j + L] for j in fills if j + L < n and ok[j + L]])) if fills.size else None
                  for L in lags]
        row = {"seed": seed, "lost_chunks": int(lost.size), "dropped_counted": int(lossy["dropped_samples"]),
               "gated_clean": clean["gated_frac"], "gated_lossy": lossy["gated_frac"],
               "reward_clean": clean["reward_rate"], "reward_lossy": lossy["reward_rate"],
               "si_err_near_fills": float(np.mean(d[ok & near])) if (ok & near).any() else None,
               "si_err_all_feedback": float(np.mean(d[ok])),
               "si_spread_feedback": float(np.std(ref["si"][:n][ok])),
               "fill_hold_s": lossy["fill_hold_s"],
               "si_err_by_lag": {f"{L * MUSE_CHUNK / FS:.3f}": v for L, v in zip(lags, by_lag)}}
        rows.append(row)
        print(f"seed {seed}: {lost.size} chunks lost ({lossy['dropped_samples']} samples counted); gated "
              f"{100 * clean['gated_frac']:.1f} % clean, {100 * lossy['gated_frac']:.1f} % lossy; reward "
              f"{100 * clean['reward_rate']:.1f} / {100 * lossy['reward_rate']:.1f} %; mean |ΔSI| near fills "
              f"{row['si_err_near_fills']}, all feedback {row['si_err_all_feedback']:.4f} (SI sd "
              f"{row['si_spread_feedback']:.2f}); fill hold {lossy['fill_hold_s']}", flush=True)
        print("  mean |ΔSI| after a fill (s: value):", " ".join(f"{t}:{v:.3f}" for t, v in row["si_err_by_lag"].items()
                                                         if v is not None))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1, default=float)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
