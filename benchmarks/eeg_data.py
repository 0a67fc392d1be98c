"""Where the benchmarks find the real EEG: the full records in ``../shared/data`` beside the clone
(or beside the worktree's parent) when they are there, else the copies the test suite carries in
``tests/data`` (the same files, byte for byte, without R02; tests/data/README.md)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FULL_EEGMMIDB = next((p / "shared" / "data" / "eegmmidb-S001" for p in (ROOT.parent, ROOT.parent.parent)
                      if (p / "shared" / "data" / "eegmmidb-S001").is_dir()), None)


def _tests_eegmmidb() -> Path:
    import sys

    sys.path.insert(0, str(ROOT))
    from tests.data.eeg import unpacked

    return unpacked(ROOT / "tests" / "data" / "eegmmidb-S001")


#: The folder holding S001R01.edf ... S001R06.edf (R02 only in the full records)
EEGMMIDB = FULL_EEGMMIDB or _tests_eegmmidb()
