"""Trim the real EEG the test suite reads into tests/data/ (run once by a maintainer; the output is
committed, so a fresh clone's tests need nothing beside the repository).

Source: the full records (``--source``, default ``../shared/data`` beside the repository; see
tests/data/README.md for where to get them). The EDF files are rewritten with edfio keeping every
kept signal's header and samples as they are (labels with EEGMMIDB's trailing dots, physical and
digital ranges, µV, 160 Hz, the EDF+ annotations, the full duration); only channels the suite does
not read are dropped, and runs it does not read are left out.

What the suite reads (tests/*.py): S001R01 (eyes-open rest: the live-like sessions' baseline, the
file-source tests) and S001R03-R06 (fists and feet: replay, the report, the live-like sessions, the
emulated Cyton / Cyton + Daisy on every montage), on the union of the Cyton and Cyton + Daisy
montages (``neurofeed montages``), which holds the small Laplacian of C3 and C4: 28 channels. Every
run keeps the same channels in the same order, since the live-like sessions join R01 to each run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import edfio

HERE = Path(__file__).resolve().parent
CYTON_DEFAULT = ["Fp1", "Fp2", "C3", "C4", "P7", "P8", "O1", "O2"]
LAPLACIAN_RING = ["FC3", "C5", "C1", "CP3", "FC4", "C6", "C2", "CP4", "Cz"]
DAISY = ["F7", "F8", "F3", "F4", "T7", "T8", "P3", "P4", "FCz", "CPz", "Pz"]
KEEP = CYTON_DEFAULT + LAPLACIAN_RING + DAISY
RUNS = ("S001R01", "S001R03", "S001R04", "S001R05", "S001R06")


def _norm(label: str) -> str:
    return label.strip().rstrip(".").lower()


def trim(src: Path, dst: Path, keep: list[str]) -> None:
    edf = edfio.read_edf(src)
    want = {c.lower() for c in keep}
    drop = [s.label for s in edf.signals if _norm(s.label) not in want]
    found = {_norm(s.label) for s in edf.signals} & want
    if found != want:
        raise SystemExit(f"{src}: no channel {sorted(want - found)}")
    edf.drop_signals(drop)
    dst.parent.mkdir(parents=True, exist_ok=True)
    edf.write(dst)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = next((p / "shared" / "data" for p in HERE.parents[2:4] if (p / "shared" / "data").is_dir()),
                   HERE.parents[2] / "shared" / "data")  # also from a worktree in /work/wt/NAME
    ap.add_argument("--source", default=str(default),
                    help="folder holding eegmmidb-S001/ (the full records)")
    args = ap.parse_args(argv)
    for run in RUNS:
        trim(Path(args.source) / "eegmmidb-S001" / f"{run}.edf", HERE / "eegmmidb-S001" / f"{run}.edf", KEEP)
        print(f"{run}: {len(KEEP)} channels")


if __name__ == "__main__":
    main()
