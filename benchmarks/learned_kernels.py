"""Per-chunk cost of the learned estimator (``neurofeed.dsp.learned``) beside the wcFIR, in the
style of ``benchmarks/kernels.py`` (same timer, same simulated 8-channel Cyton data with
electrode offsets, 250 Hz, two targets C3/C4, small Laplacian).

Rows, each for 1-sample and 5-sample chunks:
* ``estimator``: the estimator's ``process_inplace`` alone on the two referenced targets;
* ``chain``: the whole ``MuChain.process`` (quality, conditioning, spatial filter, estimator) +
  the SI's log10, as ``kernels.py`` times it.
Budget (issue #20): <= 50 µs per chunk at p99.

    PYTHONPATH=. python benchmarks/learned_kernels.py --json benchmarks/learned_kernels.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kernels import NAMES, SFREQ, stats, timeit  # noqa: E402

from neurofeed.dsp.chain import MuChain  # noqa: E402
from neurofeed.dsp.quality import QualityConfig  # noqa: E402
from neurofeed.hardware.sources.simulated import MuSimulator  # noqa: E402

BUDGET_US = 50.0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json")
    ap.add_argument("--seconds", type=float, default=60.0, help="seconds of data (chunks timed)")
    args = ap.parse_args(argv)
    data, _ = MuSimulator(SFREQ, ch_names=NAMES, seed=1).generate(int(args.seconds * SFREQ))
    data = data + np.random.default_rng(2).uniform(-50e3, 50e3, (len(NAMES), 1))
    qcfg = QualityConfig(rail_uv=0.98 * 187500.0)
    results = {}
    for est_name, delay_s in (("learned", 0.0), ("wcfir", 0.0)):
        for chunk in (1, 5):
            chunks = [np.ascontiguousarray(data[:, i:i + chunk]) for i in range(0, data.shape[1], chunk)]
            chain = MuChain(SFREQ, NAMES, ["C3", "C4"], "laplacian", (8.0, 13.0), est_name, delay_s, quality=qcfg)
            targets = [np.ascontiguousarray(chain.weights @ c) for c in chunks]
            est = chain.estimator
            results[f"{est_name} estimator, {chunk}-sample chunk"] = stats(
                timeit(lambda c, est=est: est.process_inplace(c.copy()), targets))
            baseline = np.array([5.0, 5.0])
            si = np.zeros(2)

            def step(c, chain=chain, si=si):
                p = chain.process(c)
                np.log10(np.maximum(chain.last_power, 1e-12) / baseline, out=si)
                return p
            results[f"{est_name} chain, {chunk}-sample chunk"] = stats(timeit(step, chunks))
    print(f"{'per chunk (2 targets, 250 Hz)':<40s} {'p50 µs':>9s} {'p99 µs':>9s} {'cpu p50':>9s} {'cpu p99':>9s}")
    for k, v in results.items():
        print(f"  {k:<38s} {v['p50']:9.2f} {v['p99']:9.2f} {v['cpu_p50']:9.2f} {v['cpu_p99']:9.2f}")
    out = {"per_chunk_us": results, "budget_us_p99": BUDGET_US,
           "setup": {"channels": len(NAMES), "targets": ["C3", "C4"], "sfreq": SFREQ,
                     "load_average_1min": float(os.getloadavg()[0])}}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
