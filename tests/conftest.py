import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "eegmmidb-S001"
PROTOCOLS = ROOT / "protocols"


def run_cli(*args, cwd=None, timeout=300):
    """Run the real `neurofeed` console script; returns CompletedProcess."""
    import subprocess

    exe = Path(sys.executable).parent / "neurofeed"
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, cwd=cwd or ROOT,
                          timeout=timeout)


@pytest.fixture
def data_dir():
    assert DATA.exists(), f"the shared EEG data is missing at {DATA}"
    return DATA


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
