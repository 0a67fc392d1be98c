"""What the bar's smoothing costs and buys on real EEG: the SI as the bar shows it, against the truth.

The participant's bar follows the SI after the protocol's ``[feedback] smoothing_s`` (a one-pole
exponential smoother of the log power, per sample). For each time constant, on EEGMMIDB S001 R03
and R04 at C3 and C4: the default estimator (wcFIR 8–13 Hz, 50-ms design, fitted on the first
half) runs sample by sample through its streaming code; its log power is smoothed; the lag
(0–600 ms) at which that correlates best with the true log power (the ideal zero-phase 8–13 Hz
envelope of the whole record, :func:`neurofeed.dsp.accuracy.ideal_envelope`) is its effective
delay, scored on the second half. Mean over the four record-channels.

    PYTHONPATH=. .venv/bin/python benchmarks/bar_smoothing.py --json benchmarks/bar_smoothing.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from estimator_accuracy import run_streaming  # noqa: E402
from latency_frontier import eeg_records  # noqa: E402

from neurofeed.dsp.accuracy import corr_by_lag  # noqa: E402
from neurofeed.dsp.estimators import WCFIREnvelope  # noqa: E402
from neurofeed.protocol.baseline import smooth_series  # noqa: E402

TAUS_S = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)


def smooth(lp: np.ndarray, tau_s: float, sfreq: float) -> np.ndarray:
    """The bar's own smoother (the engine's :func:`~neurofeed.protocol.baseline.smooth_series`),
    one update per sample."""
    return smooth_series(lp, np.ones(lp.size, dtype=np.int64), tau_s, sfreq)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write results here")
    args = ap.parse_args(argv)
    logs = []
    for name, sf, x, truth in eeg_records():  # S001 R03/R04 C3/C4 and their 8-13 Hz truth
        half = x.size // 2
        est = WCFIREnvelope(sf, (8.0, 13.0), 1, delay_s=0.05)
        est.fit(x[None, :half])
        lp = np.log10(run_streaming(est, x, 1) ** 2 / 2 + 1e-9)
        lt = np.log10(truth ** 2 / 2 + 1e-9)
        logs.append((name, sf, half, lp, lt))
    rows = []
    print(f"{'smoothing_s':>11s}  effective delay  r there   (EEGMMIDB S001 R03/R04 C3/C4, wcfir 50-ms design)")
    for tau in TAUS_S:
        per = []
        for name, sf, half, lp, lt in logs:
            r = corr_by_lag(smooth(lp, tau, sf)[half:], lt[half:], int(0.6 * sf))
            k = int(np.nanargmax(r))
            per.append({"record": name, "effective_delay_ms": 1000 * k / sf, "r": float(r[k])})
        row = {"smoothing_s": tau, "effective_delay_ms": float(np.mean([p["effective_delay_ms"] for p in per])),
               "r": float(np.mean([p["r"] for p in per])), "records": per}
        rows.append(row)
        print(f"{tau:11g}  {row['effective_delay_ms']:12.0f} ms  {row['r']:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows}, indent=1))
    return rows


if __name__ == "__main__":
    main()
