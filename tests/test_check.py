"""`neurofeed check`: per-channel measures against known inputs, the simulated headset, and errors."""

import json

import numpy as np

from conftest import run_cli
from neurofeed.check import measure_channels, run_check
from neurofeed.session import open_source
from neurofeed.sources.simulated import SimulationScript


def test_measures_match_what_was_sent(rng):
    fs, n = 250.0, 1000
    t = np.arange(n) / fs
    names = ["Fp1", "C3", "C4", "O1"]
    offsets = np.array([42_000.0, -18_000.0, 0.0, 120_000.0])
    x = offsets[:, None] + 10.0 * rng.standard_normal((4, n))
    x[2] += 30.0 * np.sin(2 * np.pi * 50.0 * t)  # strong mains on C4
    x[3, 500:] = 187_500.0  # O1 railed half the time
    res = measure_channels(x, fs, names, range_uv=187_500.0, line_hz=50.0)
    for i, name in enumerate(names[:2]):
        assert abs(res[name].offset_uv - offsets[i]) <= 0.1 * abs(offsets[i])
        assert res[name].ok, res[name].advice
    assert abs(res["C4"].line_noise_uv - 30.0) < 3.0
    assert not res["C4"].ok and "mains" in res["C4"].advice
    assert res["O1"].railed and not res["O1"].ok and res["O1"].advice.startswith("re-seat O1")


def test_flat_and_noisy_channels_fail(rng):
    fs, n = 160.0, 800
    x = np.vstack([np.full(n, 5.0), 400.0 * rng.standard_normal(n), 8.0 * rng.standard_normal(n)])
    res = measure_channels(x, fs, ["C3", "C4", "Cz"], range_uv=4000.0, line_hz=60.0)
    assert res["C3"].flat and not res["C3"].ok
    assert not res["C4"].ok and "noisy" in res["C4"].advice
    assert res["Cz"].ok


def test_simulated_headset_passes_and_gates_see_blink_and_clench():
    t0 = 0.5 + 2.0
    script = SimulationScript(mu_factor=[], emg=[(t0 + 6.0, t0 + 8.0)], blinks=[t0 + 1.5, t0 + 3.0])
    src = open_source("simulated", script=script, realtime=False, seed=3)
    result = run_check(src, seconds=2.0, artifact_tests=True, say=lambda s: None)
    assert set(result["channels"]) == set(src.ch_names)
    assert all(c["ok"] for c in result["channels"].values())
    assert result["blink_test"]["seen"] and "blink" in result["blink_test"]["reasons"]
    assert result["jaw_test"]["seen"] and "emg" in result["jaw_test"]["reasons"]
    assert result["ok"]


def test_check_cli_writes_json_and_fails_cleanly(tmp_path):
    out = tmp_path / "check.json"
    r = run_cli("check", "--board", "simulated", "--seconds", "2", "--no-artifact-tests", "--json", out)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    keys = {"offset_uv", "line_noise_uv", "rms_uv", "impedance_kohm", "railed", "flat", "ok"}
    assert keys <= set(doc["channels"]["C3"])
    r = run_cli("check", "--board", "cyton", "--serial-port", tmp_path / "no-such-port")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "no-such-port" in r.stderr
