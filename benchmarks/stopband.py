"""Stop band of the chain (conditioning + estimator) with the weighted cFIR fitted to real baselines.

Worst gain (dB, amplitude, relative to the band centre) at 20–45 Hz, 45–55 Hz and above 55 Hz of
``MuChain`` (Laplacian, 8–13 Hz, 50-ms design) after ``retune`` on each baseline, for the uniform
design (before the fit), the fit without the stop-band floor (as before issue 19; installed here
without the chain's check, which would refuse it) and the fit with it (the default).

    PYTHONPATH=. .venv/bin/python benchmarks/stopband.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from neurofeed.dsp import estimators  # noqa: E402
from neurofeed.dsp.chain import MuChain  # noqa: E402
from neurofeed.dsp.responses import attenuation_db  # noqa: E402
from neurofeed.hardware.sources.edf import read_raw  # noqa: E402

_ROOT = Path(__file__).resolve().parent.parent
SHARED = next((p / "shared" / "data" for p in (_ROOT.parent, _ROOT.parent.parent) if (p / "shared" / "data").is_dir()),
              _ROOT.parent / "shared" / "data")
# (name, file, baseline span s, mains Hz)
BASELINES = [("S001 R01 rest, 30 s", "eegmmidb-S001/S001R01.edf", (2.0, 32.0), 60.0),
             ("S001 R03 first T0, 4.2 s", "eegmmidb-S001/S001R03.edf", (0.0, 4.2), 60.0),
             ("S02 first REST, 4 s", "mi-openbci-S02/S02_R0.edf", (41.07, 45.07), 50.0),
             ("S02 first 20 s", "mi-openbci-S02/S02_R0.edf", (0.0, 20.0), 50.0)]
BANDS = {"20-45 Hz": (20.0, 45.0), "45-55 Hz": (45.0, 55.0), "above 55 Hz": (55.05, None)}


def worst_db(chain) -> dict:
    nyq = chain.sfreq / 2
    f = np.arange(0.0, nyq, 0.05)
    fc = np.r_[0.5 * sum(chain.band_hz), f]
    g = np.abs(chain.conditioner.response(fc)) * np.sqrt(chain.estimator.power_response(fc))
    db = attenuation_db(g[1:], g[0])
    return {k: float(db[(f >= lo) & (f <= (hi or nyq))].max()) for k, (lo, hi) in BANDS.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    out = {}
    for name, rel, (a, b), line in BASELINES:
        raw = read_raw(SHARED / rel)
        x, ch, fs = raw.get_data() * 1e6, raw.ch_names, raw.info["sfreq"]
        chain = MuChain(fs, ch, ["C3", "C4"], "laplacian", (8.0, 13.0), "wcfir", 0.05, None, line)
        base = chain.spatial(x[:, int(a * fs):int(b * fs)])
        rows = {"uniform design": worst_db(chain)}
        floor = estimators.stopband_floor
        estimators.stopband_floor = lambda w, sfreq, band: w
        try:
            chain.estimator = estimators.WCFIREnvelope(fs, (8.0, 13.0), 2, 0.05)
            chain.estimator.fit(base)  # installed without the check, to measure it
            rows["fitted, no floor (before)"] = worst_db(chain)
        finally:
            estimators.stopband_floor = floor
        chain.retune((8.0, 13.0), baseline=base)
        rows["fitted, floor (default)"] = worst_db(chain) | {"installed": chain.fit_refused is None}
        out[name] = rows
        for k, v in rows.items():
            print(f"{name:<26s} {k:<27s} " + "  ".join(f"{b} {v[b]:+6.1f}" for b in BANDS))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
