"""The BDF of a 1-h session holds exactly the journal's samples: what it costs when the sample
count is prime (one sample per data record) against a round count.

A synthetic 1-h journal at 250 Hz (8 EEG channels, the 13 feedback signals of two targets, an
update every 10 samples, 366 events incl. a burst at the start and the session's end) is written
with :func:`neurofeed.recording.bdf.write_bdf` and read back with ``mne.io.read_raw_bdf``.

    PYTHONPATH=. python benchmarks/bdf_layout.py [--counts 900000 900001] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from neurofeed.core.record import NOT_STREAMED, record_columns
from neurofeed.recording.bdf import bdf_samples, write_bdf

SFREQ = 250.0
CH = ["C3", "C4", "Cz", "FC3", "FC4", "CP3", "CP4", "Pz"]


def make_journal(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True)
    cols = record_columns(["C3", "C4"])
    (folder / "header.json").write_text(json.dumps(dict(
        ch_names=CH, sfreq=SFREQ, targets=["C3", "C4"], range_uv=4000.0, participant="P01",
        started="2026-12-04T10:00:00.123456", feedback_columns=cols)))
    rng = np.random.default_rng(0)
    rng.normal(0, 20, (n, len(CH))).tofile(folder / "samples.f64")
    (np.arange(n) / SFREQ).tofile(folder / "timestamps.f64")
    np.concatenate([np.full(n // 10, 10), [n % 10] if n % 10 else []]).astype(np.int64).tofile(folder / "chunks.i64")
    fb = rng.uniform(0, 1, (n // 10, len(cols)))
    fb[:, 0] = np.arange(1, n // 10 + 1) * 10
    fb.tofile(folder / "feedback.f64")
    ev = [dict(sample=0, onset_s=0.0, duration_s=0.0, text=t)
          for t in ("session_start/demo", "block_start/baseline/exploration", "protocol/demo", "montage/standard")]
    ev += [dict(sample=s, onset_s=s / SFREQ, duration_s=0.0, text=f"reward_on/{k}")
           for k, s in enumerate(range(1000, n, 2500))]
    ev += [dict(sample=n, onset_s=n / SFREQ, duration_s=0.0, text=t)
           for t in ("block_end/training/12 of 12", "session_end/interrupted (Ctrl-C)")]
    (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in ev))
    return folder


def run(n: int) -> dict:
    import mne

    tmp = Path(tempfile.mkdtemp())
    try:
        folder = make_journal(tmp / f"s{n}", n)
        n_signals = len(CH) + sum(c not in NOT_STREAMED for c in record_columns(["C3", "C4"]))
        _, spr = bdf_samples(n, SFREQ, n_signals)
        t = time.perf_counter()
        out = write_bdf(folder)
        write_s = time.perf_counter() - t
        t = time.perf_counter()
        raw = mne.io.read_raw_bdf(out, preload=True, infer_types=True, verbose="error")
        read_s = time.perf_counter() - t
        size = out.stat().st_size
        return dict(samples=n, samples_per_record=spr, records=n // spr, size_mb=round(size / 1e6, 1),
                    bytes_per_sample=round(size / n, 1), write_s=round(write_s, 1), mne_read_s=round(read_s, 1),
                    mne_n_times=int(raw.n_times), annotations=len(raw.annotations),
                    misc_signals=raw.get_channel_types().count("misc"))
    finally:
        shutil.rmtree(tmp)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", type=int, nargs="+", default=[900_000, 900_001])
    ap.add_argument("--json")
    args = ap.parse_args()
    rows = [run(n) for n in args.counts]
    for r in rows:
        print(r)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
