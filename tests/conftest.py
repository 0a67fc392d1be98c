import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = next((p for p in (ROOT.parent / "shared", ROOT.parent.parent / "shared") if (p / "data").is_dir()),
            ROOT.parent / "shared") / "data" / "eegmmidb-S001"  # also from a worktree in /work/wt/NAME
PROTOCOLS = ROOT / "neurofeed" / "data" / "protocols"


def run_cli(*args, cwd=None, timeout=300):
    """Run the real `neurofeed` console script; returns CompletedProcess."""
    import subprocess

    exe = Path(sys.executable).parent / "neurofeed"
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, cwd=cwd or ROOT,
                          timeout=timeout)


def lsl_eeg_outlet(name, float32=False, labels=("C3", "Cz", "C4"), sfreq=250):
    """A real pylsl EEG outlet on loopback with channel labels in its description."""
    import pylsl

    fmt = pylsl.cf_float32 if float32 else pylsl.cf_double64
    info = pylsl.StreamInfo(name, "EEG", len(labels), sfreq, fmt, f"{name}-1")
    chans = info.desc().append_child("channels")
    for label in labels:
        chans.append_child("channel").append_child_value("label", label)
    return pylsl.StreamOutlet(info)


def wait_for_signal_lost(pipe, timeout_s=3.0):
    """Wait until the pipeline reports "signal lost"; return seconds from the arrival of the last
    chunk before it (the moment the stream stopped, as the pipeline saw it) to the report."""
    import time

    while pipe.lost_events == 0 and timeout_s > 0:
        time.sleep(0.005)
        timeout_s -= 0.005
    detected_ns = time.perf_counter_ns()
    assert pipe.lost_events == 1, "no 'signal lost' reported"
    probe = pipe.probe
    last_arrival_ns = pipe.t0_ns + probe.t_s[(probe.n - 1) % probe.capacity] * 1e9
    return (detected_ns - last_arrival_ns) / 1e9


@pytest.fixture
def data_dir():
    assert DATA.exists(), f"the shared EEG data is missing at {DATA}"
    return DATA


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
