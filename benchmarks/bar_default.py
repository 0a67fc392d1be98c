"""The default design on real EEG: each design's bar (electrode -> bar, estimator and chain, no
transport) on EEGMMIDB S001 R03-R06, and what ``delay_s = "choose"`` picks per record.

Each record (BrainFlow's default Cyton montage, resampled to 250 Hz: the latency loop's real EEG,
``neurofeed.devtools.bench.real_eeg_signal``) runs through the live ``Processor`` with the ``demo`` protocol
spread over ``--seconds`` + 10 s (as ``neurofeed bench latency`` does), one sample per chunk; the
bar (``si_combined``; the demo's bar is not smoothed) is scored from 3 s after the baseline against
the true log power (common average, zero-phase 8-13 Hz, Hilbert, mean of C3/C4;
``neurofeed.devtools.bench.true_log_power`` of the chain's referenced signal): the lag of best correlation
(one-sample steps, 4 ms) and r there. The live loop adds 1-3 ms and reads r ~0.01 lower
(benchmarks/RESULTS.md, "Electrode to painted bar").

    PYTHONPATH=. python benchmarks/bar_default.py [--seconds 90] [--json benchmarks/bar_default.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from neurofeed.devtools.bench import real_eeg_path, true_log_power
from neurofeed.devtools.cyton_emulator import edf_signal, montage_names
from neurofeed.dsp.accuracy import corr_by_lag
from neurofeed.live.processor import Processor
from neurofeed.protocol.schema import load_protocol

DATA = real_eeg_path().parent  # the latency loop's EEG folder (NEUROFEED_EEG_DIR to point elsewhere)
DESIGNS = ("choose", -0.02, -0.01, -0.005, 0.0, 0.01, 0.05)


def bar_on_record(path, delay, seconds=90.0, sfreq=250.0, line_hz=60.0):
    """(design in use (s), effective delay (ms), r) of the demo protocol's bar on one record."""
    names = list(montage_names("cyton", "default"))
    x = edf_signal(path, names, sfreq)
    seconds = min(seconds, x.shape[1] / sfreq - 5.0)
    x = np.ascontiguousarray(x[:, : int((seconds + 30) * sfreq)])
    p = load_protocol("demo")
    p.signal.delay_s = delay
    proc = Processor(p, sfreq, names, 187500.0, seconds_scale=(seconds + 10) / p.total_duration_s(), line_hz=line_hz)
    si = np.full(x.shape[1], np.nan)
    for s in range(x.shape[1]):
        si[s] = proc.step(x[:, s:s + 1]).si_combined
        if proc.engine.finished:
            break
    truth = true_log_power(proc.chain.spatial(x), sfreq, proc.chain.band_hz)
    ok = np.nonzero(np.isfinite(si))[0]
    a, b = ok[0] + int(3 * sfreq), ok[-1]
    r = corr_by_lag(si[a:b], truth[a:b], int(0.2 * sfreq))
    i = int(np.nanargmax(r))
    return float(proc.chain.delay_s), 1000.0 * i / sfreq, float(r[i])


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=90.0)
    ap.add_argument("--runs", nargs="+", default=["R03", "R04", "R05", "R06"])
    ap.add_argument("--designs", nargs="+", default=[str(d) for d in DESIGNS],
                    help="designed delays (s) and/or choose")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    out = {}
    print(f"{'design':>8s}  " + "  ".join(f"{run:>18s}" for run in args.runs))
    for d in [d if d == "choose" else float(d) for d in args.designs]:
        row = {}
        for run in args.runs:
            used, lag, r = bar_on_record(Path(args.data) / f"S001{run}.edf", d, args.seconds)
            row[run] = {"design_s": used, "effective_delay_ms": lag, "r": r}
        out[str(d)] = row
        name = d if d == "choose" else f"{1000 * d:+.0f} ms"
        print(f"{name:>8s}  " + "  ".join(
            f"{v['effective_delay_ms']:4.0f} ms r {v['r']:.3f}" + (f" ({1000 * v['design_s']:+.0f})" if d == "choose" else "      ")
            for v in row.values()), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
