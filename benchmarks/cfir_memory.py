"""A (weighted) cFIR with a memory: accuracy, effective delay and how long it remembers.

For each record of EEGMMIDB S001 and two derivations — the Cyton path (C3/C4 small Laplacian, the
mean log power of both, 160 Hz) and the Muse path (the record as the emulated Muse streams it:
C3 against TP9, 256 Hz, :func:`neurofeed.devtools.muse_emulator.muse_signal`) — a baseline of
``--baselines`` seconds (after 2 s of settling) is conditioned by the chain's own stage
(:meth:`neurofeed.dsp.chain.MuChain.spatial`) and scored by the library's own curve
(:func:`neurofeed.dsp.accuracy.delay_curves`: fitted on the first half, log power against the
ideal envelope on the second) for every ``--memory`` (``none``: the plain 2-s design). Printed
per row: the design ``choose`` picks, its effective delay and r there, r of the -10-ms design, and
the fitted taps' memory (the lag by which 95 % of |h|² has passed; the artifact hold follows it).

    PYTHONPATH=. python benchmarks/cfir_memory.py [--memory none 0.3 0.4 0.5] [--baselines 13.5 30 60]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from benchmarks.eeg_data import EEGMMIDB
from neurofeed.devtools.muse_emulator import MUSE_LABELS, muse_signal
from neurofeed.dsp.accuracy import choose_delay, delay_curves
from neurofeed.dsp.chain import MuChain
from neurofeed.dsp.estimators import design_cfir, fit_weights, grid_size, memory_taps
from neurofeed.hardware.sources.edf import read_raw

RUNS = ("S001R01", "S001R03", "S001R04", "S001R05", "S001R06")
BAND = (8.0, 13.0)


def derivations(run: str):
    """(name, sfreq, targets as the chain forms them over the whole record)."""
    raw = read_raw(EEGMMIDB / f"{run}.edf")
    x, fs = raw.get_data() * 1e6, float(raw.info["sfreq"])
    chain = MuChain(fs, raw.ch_names, ["C3", "C4"], "laplacian", BAND, "wcfir", -0.01, None, 60.0)
    yield "cyton C3/C4 laplacian", fs, chain.spatial(x)
    xm, _ = muse_signal(EEGMMIDB / f"{run}.edf")
    chain = MuChain(256.0, list(MUSE_LABELS[:4]) + ["C3"], ["C3"], "bipolar", BAND, "wcfir", -0.01, None, 60.0,
                    bipolar_pairs={"C3": "TP9"})
    yield "muse C3-TP9", 256.0, chain.spatial(xm)


def memory_95_s(t: np.ndarray, fs: float, delay_s: float, memory_s) -> float:
    """Lag (s) by which 95 % of the fitted taps' energy has passed, worst over the targets."""
    n = memory_taps(fs, memory_s, 2.0)
    out = 0.0
    for row in t:
        h = design_cfir(fs, BAND, delay_s, n, weights=fit_weights(row, fs, BAND, grid_size(n)),
                        n_fft=grid_size(n), memory_s=memory_s)
        e = np.cumsum(np.abs(h) ** 2)
        out = max(out, float(np.searchsorted(e, 0.95 * e[-1]) / fs))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--memory", nargs="+", default=["none", "0.3", "0.4", "0.5"])
    ap.add_argument("--baselines", type=float, nargs="+", default=[13.5, 30.0, 60.0])
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    memories = [None if m == "none" else float(m) for m in args.memory]
    rows = []
    for run in RUNS:
        for name, fs, t in derivations(run):
            t = t[:, int(2 * fs):]
            for base_s in args.baselines:
                n = int(base_s * fs)
                if n > t.shape[1]:
                    continue
                for mem in memories:
                    curve, eff = delay_curves(t[:, :n], fs, BAND, taps_s=memory_taps(fs, mem, 2.0) / fs, memory_s=mem)
                    d = choose_delay(curve, eff)
                    row = {"run": run, "path": name, "baseline_s": base_s, "memory_s": mem, "chosen_s": d,
                           "effective_s": eff[d][0], "r": eff[d][1], "effective_m10_s": eff[-0.01][0],
                           "r_m10": eff[-0.01][1], "memory95_s": memory_95_s(t[:, :n], fs, d, mem)}
                    rows.append(row)
                    print(f"{run} {name:22s} base {base_s:5.1f} s  memory {str(mem):4s}: choose {1000 * d:+4.0f} ms -> "
                          f"{1000 * row['effective_s']:3.0f} ms r {row['r']:.3f} | -10 ms: "
                          f"{1000 * row['effective_m10_s']:3.0f} ms r {row['r_m10']:.3f} | 95 % of |h|^2 by "
                          f"{row['memory95_s']:.2f} s", flush=True)
    print("\nmean over rows (r at the chosen design / effective delay ms / 95 % memory s):")
    for name in sorted({r["path"] for r in rows}):
        for mem in memories:
            sel = [r for r in rows if r["path"] == name and r["memory_s"] == mem]
            print(f"  {name:22s} memory {str(mem):4s}: r {np.mean([r['r'] for r in sel]):.3f}  "
                  f"{1000 * np.mean([r['effective_s'] for r in sel]):.0f} ms  {np.mean([r['memory95_s'] for r in sel]):.2f} s"
                  f"  (n {len(sel)})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
