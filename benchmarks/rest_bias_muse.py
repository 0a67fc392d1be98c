"""The SI at rest through the Muse path, with and without muse-c3-gentle's memory limit.

EEGMMIDB S001 R01 (eyes open) and R02 (eyes closed; in the full records only), each played twice
in a row (2 x 61 s: the 90-s session at scale 0.15, a 13.5-s baseline) as the emulated Muse
streams it (C3 against TP9, 256 Hz, 12-sample chunks) through the live Processor running
muse-c3-gentle in adaptive mode. Printed: mean and median SI over ungated feedback (0: no bias at
rest), the gated share of feedback and the reward rate.

    PYTHONPATH=. python benchmarks/rest_bias_muse.py
"""

from __future__ import annotations

import numpy as np

from benchmarks.eeg_data import EEGMMIDB
from benchmarks.gaps_muse import CH, FS, muse_protocol
from neurofeed.devtools.muse_emulator import MUSE_CHUNK, muse_signal
from neurofeed.live.processor import Processor


def rest_session(x: np.ndarray, memory: str | None) -> dict:
    """One session on ``x``; ``memory`` as ``gaps_muse.muse_protocol`` takes it."""
    proc = Processor(muse_protocol(memory=memory), FS, CH, 187500.0, 0.15, line_hz=60.0)
    si, gated = [], []
    for i in range(0, x.shape[1] - MUSE_CHUNK, MUSE_CHUNK):
        if proc.engine.finished:
            break
        st = proc.step(np.ascontiguousarray(x[:, i:i + MUSE_CHUNK]))
        if st.feedback_on and np.isfinite(st.si_combined):
            si.append(st.si_combined)
            gated.append(st.gated)
    si, gated = np.array(si), np.array(gated, dtype=bool)
    s = proc.summary()
    return {"si_mean": float(si[~gated].mean()), "si_median": float(np.median(si[~gated])),
            "si_sd": float(si[~gated].std()), "gated_pct": 100 * s["gated_s"] / max(s["feedback_s"], 1e-9),
            "reward_pct": 100 * s["reward_rate"], "feedback_s": s["feedback_s"]}


def main() -> int:
    for run in ("S001R01", "S001R02"):
        path = EEGMMIDB / f"{run}.edf"
        if not path.exists():  # R02 is not among the copies the tests carry
            continue
        x, _ = muse_signal(path)
        x = np.concatenate([x, x], axis=1)
        for memory, label in (("none", "2-s design"), (None, "memory 0.3 s")):
            r = rest_session(x, memory)
            print(f"{run} {label:12s}: feedback {r['feedback_s']:.1f} s, SI mean {r['si_mean']:+.3f} median "
                  f"{r['si_median']:+.3f} sd {r['si_sd']:.3f}; gated {r['gated_pct']:.1f} %; reward "
                  f"{r['reward_pct']:.1f} %", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
