"""`neurofeed check`: per-channel measures against known inputs, the simulated headset, and errors."""

import json

import numpy as np
import pytest
from conftest import run_cli

from neurofeed.hardware.signal_check import measure_channels, run_signal_check
from neurofeed.hardware.sources.simulated import SimulationScript
from neurofeed.live.session import open_source


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
    result = run_signal_check(src, seconds=2.0, artifact_tests=True, say=lambda s: None)
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


def _emulated_cyton(data_dir, **kw):
    from neurofeed.devtools.cyton_emulator import CytonEmulator, edf_signal, montage_names

    x = edf_signal(data_dir / "S001R03.edf", montage_names("cyton"), 250.0)[:, : 250 * 60]
    return CytonEmulator(x, **kw)


def test_check_on_the_emulated_cyton_reads_offsets_impedance_and_the_railed_channel(data_dir):
    from neurofeed.devtools.cyton_emulator import RAIL_UV
    from neurofeed.hardware.boards import get_board
    from neurofeed.hardware.sources.brainflow import BrainFlowSource

    offsets = np.array([50e3, -50e3, 30e3, -20e3, 45e3, -45e3, 10e3, -35e3])
    with _emulated_cyton(data_dir, speed=4, offsets_uv=offsets, railed_channel=5, impedance_kohm=12.0) as emu:
        src = BrainFlowSource(get_board("cyton"), serial_port=emu.port)
        result = run_signal_check(src, seconds=3.0, say=lambda s: None)
    chans = result["channels"]
    for i, name in enumerate(src.ch_names):
        c = chans[name]
        if i == 5:
            assert c["railed"] and not c["ok"] and c["advice"].startswith(f"re-seat {name}")
            continue
        assert abs(c["offset_uv"] - offsets[i]) <= 0.1 * abs(offsets[i]), (name, c["offset_uv"])
        assert c["impedance_kohm"] is not None and abs(c["impedance_kohm"] - 12.0) <= 3.0, (name, c)
    assert chans[src.ch_names[5]]["offset_uv"] == pytest.approx(RAIL_UV, rel=0.02)
    assert not result["ok"]


def test_a_session_on_a_headset_starts_with_the_signal_check(data_dir, tmp_path, capsys):
    from neurofeed.cli import main

    with _emulated_cyton(data_dir, speed=4, offsets_uv=40e3) as emu:
        rc = main(["session", "--board", "cyton", "--serial-port", emu.port, "--protocol", "demo",
                   "--participant", "P07", "--headless", "--no-lsl", "--seconds-scale", "0.05", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "Signal check" in out and out.index("Signal check") < out.index("Session summary")
    assert "all channels ok" in out  # 40-mV offsets are normal for a DC-coupled amplifier


def test_the_check_is_the_consoles_first_panel(tmp_path, qtbot):
    from neurofeed.live.session import build_session
    from neurofeed.protocol.schema import load_protocol
    from neurofeed.ui.display import Views

    src = open_source("simulated", realtime=False, seed=2)
    result = run_signal_check(src, seconds=1.0, say=lambda s: None)
    result["channels"]["C3"].update(ok=False, advice="re-seat C3: offset 180 mV")
    result["ok"] = False
    pipe, rec = build_session(src, load_protocol("demo"), "P08", tmp_path, lsl=False)
    try:
        views = Views(pipe, tone=None, check=result)
        qtbot.addWidget(views.console)
        text = views.console.check_label.text()
        assert "Signal check before the session" in text and "re-seat C3: offset 180 mV" in text
    finally:
        rec.close(finalize=False)
