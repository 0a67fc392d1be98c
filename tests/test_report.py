"""Reports on a simulated session, a participant folder and a replay; BIDS export."""

import json

from neurofeed.protocol.schema import load_protocol
from neurofeed.session import build_session, finish_session
from neurofeed.sources.simulated import MuSimulator, SimulatedSource, SimulationScript
from tests.conftest import DATA, PROTOCOLS, run_cli


def _session(root, seed):
    proto = load_protocol(PROTOCOLS / "demo.toml")
    src = SimulatedSource(MuSimulator(script=SimulationScript.alternating(60), seed=seed), realtime=False)
    pipe, rec = build_session(src, proto, "P11", root, seconds_scale=0.3, lsl=False)
    pipe.run()
    finish_session(pipe, rec)
    return rec.folder


def test_session_and_participant_reports(tmp_path):
    a = _session(tmp_path, 1)
    _session(tmp_path, 2)
    r = run_cli("report", a)
    assert r.returncode == 0, r.stderr
    page = (a / "report" / "index.html").read_text()
    for png in ("si_over_time.png", "blocks_by_kind.png", "spectra.png"):
        assert png in page and (a / "report" / png).stat().st_size > 5000
    assert "observe-hands" in page and "Latency" in page and "not a medical device" in page
    r = run_cli("report", tmp_path / "P11")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "P11" / "report" / "progress.png").stat().st_size > 5000


def test_replay_report_and_bids_export(tmp_path):
    r = run_cli("replay", DATA / "S001R04.edf", "--baseline-label", "T0", "--baseline-from", DATA / "S001R01.edf",
                "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "S001R04_edf"
    r = run_cli("report", out)
    assert r.returncode == 0, r.stderr
    assert "T1" in (out / "report" / "index.html").read_text()
    folder = _session(tmp_path / "rec", 3)
    r = run_cli("export-bids", folder, "--root", tmp_path / "bids")
    assert r.returncode == 0, r.stderr
    sidecars = list((tmp_path / "bids").rglob("*_eeg.json"))
    assert sidecars and json.loads(sidecars[0].read_text())["SamplingFrequency"] == 250
    assert list((tmp_path / "bids").rglob("*_events.tsv"))


def test_report_on_something_else_is_one_line(tmp_path):
    r = run_cli("report", tmp_path)
    assert r.returncode == 2 and "not a session folder" in r.stderr and "Traceback" not in r.stderr


def test_replay_report_of_s001_shows_fist_erd_with_ci_and_exports_epochs(tmp_path):
    import mne
    import numpy as np

    from neurofeed.replay import replay_many
    from neurofeed.report import make_report

    files = [DATA / f"S001R0{i}.edf" for i in (3, 4, 5, 6)]
    replay_many(files, protocol=PROTOCOLS / "action-observation-research.toml", baseline_label="T0",
                out=tmp_path / "A", mode="offline")
    page = make_report(tmp_path / "A", epochs_out=tmp_path / "s001-epo.fif")
    html = page.read_text()
    for png in ("erd.png", "tfr.png"):
        assert f'src="{png}"' in html and (page.parent / png).stat().st_size > 20000
    assert "{" not in html.split("<body>")[1]  # tables, never Python dicts
    erd = json.loads((page.parent / "erd.json").read_text())
    for site in ("C3", "C4"):  # T1 is a fist condition in every run (left fist; both fists)
        d = erd["T1"][site]
        assert d["n_trials"] >= 28 and d["mean_pct_0.5_4s"] < -20 and d["ci95_pct_0.5_4s"][1] < 0, d
        assert f"T1 (n={d['n_trials']})" not in html  # the count is in the figure legend, and in the table:
        assert f"<td>{d['n_trials']}</td>" in html
    epochs = mne.read_epochs(tmp_path / "s001-epo.fif", verbose="error")
    expected = {}
    for f in files:
        raw = mne.io.read_raw_edf(f, verbose="error")
        for a in raw.annotations:  # MNE keeps an epoch whose −1…+4 s window lies inside the recording
            s = int(round(a["onset"] * raw.info["sfreq"]))
            if s - raw.info["sfreq"] >= 0 and s + 4 * raw.info["sfreq"] < raw.n_times:
                expected[a["description"]] = expected.get(a["description"], 0) + 1
    assert {k: len(epochs[k]) for k in epochs.event_id} == expected
    assert np.allclose(epochs.tmin, -1.0) and np.isclose(epochs.tmax, 4.0, atol=0.01)
