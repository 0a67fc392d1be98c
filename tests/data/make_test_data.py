"""Trim the real EEG the test suite reads into tests/data/ (run once by a maintainer; the output is
committed, so a fresh clone's tests need nothing beside the repository).

Source: the full records (``--source``, default ``../shared/data`` beside the repository; see
tests/data/README.md for where to get them). The EDF files are rewritten with edfio keeping every
kept signal's header and samples as they are (labels with EEGMMIDB's trailing dots, physical and
digital ranges, µV, 160 Hz, the EDF+ annotations, the full duration); only channels the suite does
not read are dropped, and runs it does not read are left out.

What the suite reads (tests/*.py):
- S001R03: the emulated Cyton / Cyton + Daisy on every montage (tests/test_emulator.py,
  test_emulated_sessions.py, test_check.py), replay, the report, sources, display: the union of the
  Cyton and Cyton + Daisy montages (``neurofeed montages``), 28 channels.
- S001R04-R06: replay on the file's own channels (the small Laplacian of C3/C4: first ring), the
  Cyton default montage (Fp1 Fp2 C3 C4 P7 P8 O1 O2) of the live-like sessions, and Cz: 17 channels.
- S001R01: the live-like sessions' baseline (the same 17 channels) and the file-source tests.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import edfio

HERE = Path(__file__).resolve().parent
CYTON_DEFAULT = ["Fp1", "Fp2", "C3", "C4", "P7", "P8", "O1", "O2"]
LAPLACIAN_RING = ["FC3", "C5", "C1", "CP3", "FC4", "C6", "C2", "CP4", "Cz"]
DAISY = ["F7", "F8", "F3", "F4", "T7", "T8", "P3", "P4", "FCz", "CPz", "Pz"]
KEEP = {
    "S001R01": CYTON_DEFAULT + LAPLACIAN_RING,
    "S001R03": CYTON_DEFAULT + LAPLACIAN_RING + DAISY,
    "S001R04": CYTON_DEFAULT + LAPLACIAN_RING,
    "S001R05": CYTON_DEFAULT + LAPLACIAN_RING,
    "S001R06": CYTON_DEFAULT + LAPLACIAN_RING,
}


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
    for run, keep in KEEP.items():
        trim(Path(args.source) / "eegmmidb-S001" / f"{run}.edf", HERE / "eegmmidb-S001" / f"{run}.edf", keep)
        print(f"{run}: {len(keep)} channels")


if __name__ == "__main__":
    main()
