"""Pack the real EEG the test suite reads into tests/data/ (run once by a maintainer; the output is
committed, so a fresh clone's tests need nothing beside the repository).

The suite reads five runs of EEGMMIDB subject S001: R01 (eyes-open rest: the live-like sessions'
baseline, the file-source tests) and R03-R06 (fists and feet: replay, the report, the live-like
sessions, the emulated Cyton / Cyton + Daisy on every montage). It reads them whole: every channel
(the file source and channel-map tests count and rename the file's 64 channels, the common average
and the amplifier range are taken over all of them) and every second (replay and the report use every
trial). So nothing is cut: R02 (eyes closed), which no test reads, is left out, and each file is
stored xz-compressed, byte for byte (tests/data/eeg.py unpacks it on first use).

Source: the full records (``--source FOLDER`` holding ``eegmmidb-S001/``, e.g. PhysioNet's EEGMMIDB
download; see tests/data/README.md for where to get them). No default: the tool reads only the folder
it is given, never a place beside the repository.
"""

from __future__ import annotations

import argparse
import lzma
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = ("S001R01", "S001R03", "S001R04", "S001R05", "S001R06")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", required=True, help="folder holding eegmmidb-S001/ (the full records)")
    args = ap.parse_args(argv)
    out = HERE / "eegmmidb-S001"
    out.mkdir(exist_ok=True)
    for run in RUNS:
        data = (Path(args.source) / "eegmmidb-S001" / f"{run}.edf").read_bytes()
        packed = lzma.compress(data, preset=9)
        (out / f"{run}.edf.xz").write_bytes(packed)
        print(f"{run}: {len(data) / 1e6:.2f} MB -> {len(packed) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
