"""Reports on a simulated session, a participant folder and a replay; BIDS export."""

import json

import pytest

from neurofeed.hardware.sources.simulated import MuSimulator, SimulatedSource, SimulationScript
from neurofeed.live.session import build_session, finish_session, print_summary
from neurofeed.protocol.schema import load_protocol
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
    # the feedback signals are MISC in channels.tsv, the electrodes EEG (they once all landed as EEG)
    import csv

    (channels,) = (tmp_path / "bids").rglob("*_channels.tsv")
    types = {r["name"]: r["type"] for r in csv.DictReader(channels.open(), delimiter="\t")}
    assert types["C3"] == "EEG" and types["live_fb"] == "MISC", types
    assert {t for n, t in types.items() if n.startswith(("si_", "power_"))} == {"MISC"}, types


def test_report_on_something_else_is_one_line(tmp_path):
    r = run_cli("report", tmp_path)
    assert r.returncode == 2 and "not a session folder" in r.stderr and "Traceback" not in r.stderr


FISTS = ("R03/T1", "R03/T2", "R04/T1", "R04/T2", "R05/T1", "R06/T1")  # EEGMMIDB: fist execution or imagery
FEET = ("R05/T2", "R06/T2")


@pytest.mark.parametrize("mode", ["offline", "causal"])
def test_replay_report_of_s001_shows_erd_in_db_per_run_and_exports_epochs_with_metadata(tmp_path, mode):
    import mne
    import numpy as np

    from neurofeed.analysis.replay import replay_many
    from neurofeed.analysis.report import make_report

    files = [DATA / f"S001R0{i}.edf" for i in (3, 4, 5, 6)]
    # causal: the baseline (and the fitted estimator) from R01's rest, as the one-line refusal suggests
    extra = {"baseline_from": DATA / "S001R01.edf"} if mode == "causal" else {}
    replay_many(files, protocol=PROTOCOLS / "action-observation-research.toml", baseline_label="T0",
                out=tmp_path / "A", mode=mode, **extra)
    page = make_report(tmp_path / "A", epochs_out=tmp_path / "s001-epo.fif")
    html = page.read_text()
    for png in ("erd.png", "tfr.png"):
        assert f'src="{png}"' in html and (page.parent / png).stat().st_size > 20000
    assert "{" not in html.split("<body>")[1]  # tables, never Python dicts
    erd = json.loads((page.parent / "erd.json").read_text())
    assert "pre-event" in erd["baseline"]
    conds = erd["conditions"]
    # T1/T2 mean different tasks in R03-R06: kept apart per run; T0 is rest in every run and pools
    assert sorted(conds) == sorted([*FISTS, *FEET, "T0"]), sorted(conds)
    assert conds["R03/T1"]["C3"]["task"] == "left fist" and conds["R05/T2"]["C4"]["task"] == "both feet"
    assert "Conditions kept apart" in html and "R05/T2" in html and "both feet" in html
    for cond, per in conds.items():
        for site, d in per.items():  # a power change cannot fall below -100 %: the CI is taken in dB
            lo, hi = d["ci95_db_0.5_4s"]
            assert np.isfinite([lo, hi]).all() and lo < d["mean_db_0.5_4s"] < hi, (cond, site, d)
            assert -100 < d["ci95_pct_0.5_4s"][0] < d["mean_pct_0.5_4s"] < d["ci95_pct_0.5_4s"][1], (cond, site)
            assert min(d["ci95_db_low"]) > -60 and min(d["mean_db"]) > -60
    for cond in FISTS:  # every fist condition: mu ERD at one site at least, vs the trial's own pre-event rest
        assert min(conds[cond][s]["mean_db_0.5_4s"] for s in ("C3", "C4")) < -0.7, (cond, conds[cond])
    for run in ("R05", "R06"):  # feet above fists at the hand areas, within each run
        feet = np.mean([conds[f"{run}/T2"][s]["mean_db_0.5_4s"] for s in ("C3", "C4")])
        fists = np.mean([conds[f"{run}/T1"][s]["mean_db_0.5_4s"] for s in ("C3", "C4")])
        assert feet > fists + 2.0, (run, feet, fists)
    assert conds["R06/T1"]["C3"]["ci95_db_0.5_4s"][1] < 0  # imagined fists: a clear ERD at C3
    epochs = mne.read_epochs(tmp_path / "s001-epo.fif", verbose="error")
    meta = epochs.metadata
    assert {"subject", "run", "session", "label", "condition", "task"} <= set(meta.columns)
    assert set(meta["subject"]) == {"S001"} and set(meta["run"]) == {"R03", "R04", "R05", "R06"}
    assert set(meta["session"]) == {"n/a"}
    expected = {}
    for f in files:
        raw = mne.io.read_raw_edf(f, verbose="error")
        for a in raw.annotations:  # MNE keeps an epoch whose -1...+4 s window lies inside the recording
            s = int(round(a["onset"] * raw.info["sfreq"]))
            if s - raw.info["sfreq"] >= 0 and s + 4 * raw.info["sfreq"] < raw.n_times:
                key = (f"R{f.stem[-2:]}", a["description"])
                expected[key] = expected.get(key, 0) + 1
    assert meta.groupby(["run", "label"]).size().to_dict() == expected
    assert len(epochs["R03/T1"]) == expected[("R03", "T1")]
    assert set(epochs["R03/T1"].metadata["task"]) == {"left fist"}
    assert len(epochs["T0"]) == sum(n for (_, lab), n in expected.items() if lab == "T0")
    assert np.allclose(epochs.tmin, -1.0) and np.isclose(epochs.tmax, 4.0, atol=0.01)
    if mode == "causal":  # the session baseline only when asked, and then labelled as such
        page = make_report(tmp_path / "A", out=tmp_path / "session-ref", erd_baseline="session")
        erd = json.loads((page.parent / "erd.json").read_text())
        assert "session baseline" in erd["baseline"] and "session baseline" in page.read_text()
        for per in erd["conditions"].values():
            for d in per.values():
                assert d["ci95_pct_0.5_4s"][0] > -100 and np.isfinite(d["ci95_db_0.5_4s"]).all()


def test_label_map_pools_what_it_names_and_warns_for_nothing(tmp_path, caplog):
    """A TOML label map by run names the conditions: R03's and R04's fists pool by the map's names
    (the map's author says they are one task each), no warning; without the map they stay apart."""
    from neurofeed.analysis.replay import read_label_map, replay_many

    files = [DATA / f"S001R0{i}.edf" for i in (3, 4)]
    (tmp_path / "labels.toml").write_text('[R03]\nT1 = "left-fist"\nT2 = "right-fist"\n'
                                          '["S001R04.edf"]\nT1 = "left-fist"\nT2 = "right-fist"\n')
    m = read_label_map(tmp_path / "labels.toml")
    common = dict(protocol=PROTOCOLS / "action-observation-research.toml", baseline_label="T0", mode="offline")
    with caplog.at_level("WARNING"):
        replay_many(files, out=tmp_path / "mapped", label_map=m, **common)
    assert "means different tasks" not in caplog.text
    g = json.loads((tmp_path / "mapped" / "group.json").read_text())
    assert sorted(g["subjects"]["S001"]) == ["T0", "left-fist", "right-fist"] and g["kept_apart"] == []
    assert g["subjects"]["S001"]["left-fist"]["n_recordings"] == 2
    caplog.clear()
    with caplog.at_level("WARNING"):
        replay_many(files, out=tmp_path / "plain", **common)
    lines = [r.getMessage() for r in caplog.records if "means different tasks" in r.getMessage()]
    assert len(lines) == 2 and all("\n" not in ln for ln in lines)  # one line per label (T1, T2)
    assert "R03: left fist" in lines[0] and "R04: imagined left fist" in lines[0]
    g = json.loads((tmp_path / "plain" / "group.json").read_text())
    assert sorted(g["subjects"]["S001"]) == ["R03/T1", "R03/T2", "R04/T1", "R04/T2", "T0"]
    r = run_cli("replay", DATA / "S001R03.edf", "--label-map", tmp_path / "nope.toml", "--out", tmp_path / "x")
    assert r.returncode == 2 and "--label-map" in r.stderr and "Traceback" not in r.stderr


def test_session_summary_printout_is_sentences_not_dicts(tmp_path):
    import io

    proto = load_protocol(PROTOCOLS / "demo.toml")
    src = SimulatedSource(MuSimulator(script=SimulationScript.alternating(60), seed=4), realtime=False)
    pipe, rec = build_session(src, proto, "P12", tmp_path, seconds_scale=0.3, lsl=False)
    pipe.run()
    summary = finish_session(pipe, rec)
    assert isinstance(summary["baseline_uv2"], dict)
    out = io.StringIO()
    print_summary(summary, out)
    text = out.getvalue()
    assert "{" not in text and "}" not in text, text
    base = summary["baseline_uv2"]
    assert f"baseline mu power: C3 {base['C3']:.3g} µV², C4 {base['C4']:.3g} µV²" in text


def test_a_closed_pipe_ends_quietly():
    """`neurofeed protocols list | head -1`: the reader goes away; no traceback, the conventional status."""
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).parent / "neurofeed"
    p = subprocess.Popen([str(exe), "protocols", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()  # closed before the command writes (its start-up takes far longer than this)
    err = p.stderr.read().decode()
    rc = p.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err, err
    assert rc in (0, 141), (rc, err)
    r = subprocess.run(["bash", "-c", f"set -o pipefail; '{exe}' protocols list | head -1"], capture_output=True,
                       text=True, timeout=120)
    assert r.stdout.startswith("name") and r.stdout.count("\n") == 1, r.stdout
    assert r.stderr == "" and r.returncode in (0, 141), (r.returncode, r.stderr)
