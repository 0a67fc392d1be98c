"""Where the benchmarks find the real EEG: the full records in ``../shared/data`` beside the clone
(or beside the worktree's parent) when they are there, else the copies the test suite carries in
``tests/data`` (the same runs and samples, trimmed to 28 channels around C3/C4 and the Cyton
montages; tests/data/README.md). Figures in RESULTS.md were measured on the full records."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS_EEGMMIDB = ROOT / "tests" / "data" / "eegmmidb-S001"
FULL_EEGMMIDB = next((p / "shared" / "data" / "eegmmidb-S001" for p in (ROOT.parent, ROOT.parent.parent)
                      if (p / "shared" / "data" / "eegmmidb-S001").is_dir()), None)
#: The folder holding S001R01.edf ... S001R06.edf (R02 only in the full records)
EEGMMIDB = FULL_EEGMMIDB or TESTS_EEGMMIDB
