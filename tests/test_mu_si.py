"""The mu suppression index on real EEG (EEGMMIDB S001) against an offline Welch reference."""

import mne
import numpy as np
import pytest
from scipy import signal

from neurofeed.analysis.replay import replay_file
from neurofeed.protocol.schema import load_protocol
from tests.conftest import PROTOCOLS

RUNS = ("03", "04", "05", "06")


def _kind(run, label):
    if label == "T0":
        return "rest"
    return "feet" if (label == "T2" and run in ("05", "06")) else "fist"


@pytest.fixture(scope="module")
def pooled(data_dir=None):
    from tests.conftest import DATA

    proto = load_protocol(PROTOCOLS / "action-observation-research.toml")
    proto.signal.reference = "raw"  # the file's own reference, as in the offline reference
    pipe = {k: [] for k in ("rest", "fist", "feet")}
    welch = {k: [] for k in ("rest", "fist", "feet")}
    for run in RUNS:
        path = DATA / f"S001R{run}.edf"
        res = replay_file(path, proto, baseline_label="T0", mode="offline")  # pooled baseline, per-sample power
        power, sfreq = res["power"], res["sfreq"]
        raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
        x = raw.get_data(picks=["C3..", "C4.."]) * 1e6
        for a in raw.annotations:
            s, e = int(round((a["onset"] + 0.5) * sfreq)), int(round((a["onset"] + 4.0) * sfreq))
            if e > x.shape[1]:
                continue
            kind = _kind(run, a["description"])
            pipe[kind].append(power[:, s:e].mean(axis=1))
            f, p = signal.welch(x[:, s:e], fs=sfreq, window="hann", nperseg=int(sfreq), noverlap=int(sfreq) // 2)
            welch[kind].append(p[:, (f >= 8) & (f <= 13)].mean(axis=1))
    si = lambda d, k: np.log10(np.mean(d[k], axis=0) / np.mean(d["rest"], axis=0))  # noqa: E731
    return {k: (si(pipe, k), si(welch, k)) for k in ("fist", "feet")}


def test_fist_epochs_show_mu_suppression_matching_welch(pooled):
    ours, ref = pooled["fist"]
    assert np.all(ref < -0.05)  # the reference itself: about -0.12 / -0.10
    assert np.all(ours < 0), ours
    assert np.all(np.abs(ours - ref) <= 0.05), (ours, ref)


def test_feet_epochs_are_a_negative_control(pooled):
    ours, ref = pooled["feet"]
    assert np.all(ours >= -0.03), ours
    assert np.all(np.abs(ours - ref) <= 0.06), (ours, ref)
