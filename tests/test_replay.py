"""File and dataset replay: causal vs offline modes, a live session's BDF, 2048 Hz, datasets
on joblib and on a Dask cluster."""

import json

import mne
import numpy as np
import pytest

from neurofeed.analysis.replay import replay_file, replay_many
from neurofeed.hardware.sources.simulated import MuSimulator, SimulatedSource, SimulationScript
from neurofeed.live.session import build_session, finish_session
from neurofeed.protocol.schema import load_protocol, parse_protocol
from neurofeed.recording.journal import read_journal
from tests.conftest import DATA, PROTOCOLS, run_cli

RUNS = ("03", "04", "05", "06")


@pytest.fixture(scope="module")
def s001():
    """Both modes on S001 R03–R06 (T0 rest as the baseline)."""
    proto = load_protocol(PROTOCOLS / "action-observation-research.toml")
    # causal: the run's first T0 alone (4.2 s, as live would take it), far below the protocol's
    # min_clean_s; accepted knowingly here (min_baseline_s=0) for the within-run contrast
    return {mode: {run: replay_file(DATA / f"S001R{run}.edf", proto, "T0", mode=mode, min_baseline_s=0)["conditions"]
                   for run in RUNS} for mode in ("causal", "offline")}


def _fist_feet(conds):
    """SI at (C3, C4) of every fist condition and every feet condition (T1/T2 of R03/R04 are
    left/right fist; of R05/R06 both fists / both feet)."""
    fist, feet = [], []
    for run, c in conds.items():
        fist.append([c["T1"]["si"]["C3"], c["T1"]["si"]["C4"]])
        (feet if run in ("05", "06") else fist).append([c["T2"]["si"]["C3"], c["T2"]["si"]["C4"]])
    return np.array(fist), np.array(feet)


def test_offline_mode_fists_suppress_mu_feet_do_not(s001):
    fist, feet = _fist_feet(s001["offline"])
    assert np.all(fist.mean(axis=0) < 0), fist  # C3 and C4
    # every fist condition at the site contralateral to the fist (both sites for both fists):
    # rows are R03 T1 (left), R03 T2 (right), R04 T1, R04 T2, R05 T1 (both), R06 T1 (both). With the
    # SI as a mean of log power (issue 19) R04's right fist reads +0.04 at the ipsilateral C4
    contra = [fist[0, 1], fist[1, 0], fist[2, 1], fist[3, 0], *fist[4], *fist[5]]
    assert np.all(np.array(contra) < 0), fist
    assert np.all(feet.mean(axis=0) >= -0.03), feet
    assert all(c["T0"]["si"]["C3"] == pytest.approx(0.0, abs=1e-9) for c in s001["offline"].values())


def test_causal_mode_fists_below_feet_within_each_run(s001):
    # Causal: each run's baseline is its first T0 (4.2 s, as live would take it). Later rest
    # periods carry the post-movement mu rebound, so absolute SI sits higher than offline; the
    # within-run contrast (same baseline) is what a participant's bar would show: fists below feet.
    causal = s001["causal"]
    for run in ("05", "06"):
        fists, feet = causal[run]["T1"]["si"], causal[run]["T2"]["si"]
        assert fists["C3"] < feet["C3"] - 0.2 and fists["C4"] < feet["C4"] - 0.2, (run, fists, feet)
        assert feet["C3"] >= -0.03 and feet["C4"] >= -0.03
    fist, feet = _fist_feet(causal)
    assert np.all(fist.mean(axis=0) < feet.mean(axis=0) - 0.2), (fist, feet)
    # against the run's own later rest (same baseline): every fist condition suppresses mu at both
    # sites, feet do not
    for run, c in causal.items():
        rest = np.array([c["T0"]["si"]["C3"], c["T0"]["si"]["C4"]])
        for label in ("T1", "T2"):
            si = np.array([c[label]["si"]["C3"], c[label]["si"]["C4"]])
            if label == "T2" and run in ("05", "06"):
                assert np.all(si >= rest - 0.03), (run, label, si, rest)
            else:
                assert np.all(si < rest), (run, label, si, rest)
    # and the modes differ only by the baseline: the causal one is the first T0 alone
    assert causal["04"]["T0"]["segments"] == 15 and causal["04"]["T0"]["si"]["C3"] > 0.1


def test_live_session_bdf_replayed_causally_gives_the_live_si(tmp_path):
    proto = load_protocol(PROTOCOLS / "demo.toml")
    script = SimulationScript.alternating(60, emg_every_s=7, blink_every_s=5)
    src = SimulatedSource(MuSimulator(script=script, seed=5), realtime=False)
    pipe, rec = build_session(src, proto, "P09", tmp_path, seconds_scale=0.3, lsl=False)
    pipe.run()
    finish_session(pipe, rec)
    live = read_journal(rec.folder)
    res = replay_file(next(rec.folder.glob("*.bdf")), proto, mode="causal")  # blocks from the BDF's events
    cols = live.columns
    at = {int(r[0]): i for i, r in enumerate(live.feedback)}
    pairs = [(at[int(r[0])], k) for k, r in enumerate(res["feedback"]) if int(r[0]) in at]
    assert len(pairs) == len(res["feedback"]) >= 0.95 * len(live.feedback)  # every replayed update is a live one
    a = live.feedback[[i for i, _ in pairs]]
    b = res["feedback"][[k for _, k in pairs]]
    c = cols.index("si_combined")
    assert np.array_equal(np.isnan(a[:, c]), np.isnan(b[:, c]))  # SI starts at the same update
    assert np.isfinite(a[:, c]).sum() > 300
    assert np.nanmax(np.abs(a[:, c] - b[:, c])) < 0.01  # 24-bit quantisation is the only difference
    for t in ("C3", "C4"):
        i = cols.index(f"si_{t}")
        assert np.nanmax(np.abs(a[:, i] - b[:, i])) < 0.01
    assert [r[2] for r in res["labels"]] == ["baseline", "observe-hands", "rest", "observe-hands-2", "transfer"]
    # the command's way: the BDF inside its session folder replays with the session's own protocol
    bdf_run = replay_many([next(rec.folder.glob("*.bdf"))], out=tmp_path / "bdf")
    journal_run = replay_many([rec.folder], out=tmp_path / "journal")
    (b,), (j,) = bdf_run.values(), journal_run.values()
    assert b["mode"] == "causal" and j["mode"] == "journal" and set(b["conditions"]) == set(j["conditions"])
    for label, c in j["conditions"].items():
        assert b["conditions"][label]["combined"] == pytest.approx(c["combined"], abs=0.01), label


def _bdf_2048(path, seconds=13.0, sfreq=2048):
    raw = mne.io.read_raw_edf(DATA / "S001R04.edf", preload=True, verbose="error")
    raw.crop(0, seconds).pick(["C3..", "C4..", "Cz..", "C1..", "C2..", "C5..", "C6..", "Fc3.", "Fc4.", "Cp3.", "Cp4."])
    raw.resample(sfreq, verbose="error")
    mne.export.export_raw(path, raw, fmt="bdf", overwrite=True, verbose="error")
    return path


@pytest.mark.parametrize("sfreq", [100, 2048, 4096])
def test_any_rate_replays_in_scaled_chunks(tmp_path, sfreq):
    path = _bdf_2048(tmp_path / f"rate-{sfreq}.bdf", seconds=13.0, sfreq=sfreq)
    proto = load_protocol(PROTOCOLS / "action-observation-research.toml")
    proto.signal.estimator = "iir"  # the replay side: chunking, blocks and baseline at any rate
    res = replay_file(path, proto, "T0", min_baseline_s=0)  # a 13-s file: its T0 is short by design
    assert res["sfreq"] == sfreq
    steps = np.diff(np.r_[0, res["feedback"][:, 0]])
    assert np.median(steps) == round(0.04 * sfreq)  # 0.04-s chunks as live: 4, 82, 164 samples
    assert set(res["conditions"]) == {"T0", "T1", "T2"}  # MNE's BAD_ACQ_SKIP edge is not a condition
    assert all(np.isfinite(v) for c in res["conditions"].values() for v in c["si"].values())


def test_2048_hz_bdf_replays_with_the_default_estimator(tmp_path):
    # the weighted cFIR's taps at 2048 Hz (2-s taps need more than a 2048-point design grid)
    path = _bdf_2048(tmp_path / "biosemi-2048.bdf", seconds=9.0)
    res = replay_file(path, load_protocol(PROTOCOLS / "action-observation-research.toml"), "T0", min_baseline_s=0)
    assert res["sfreq"] == 2048.0 and np.isfinite(res["conditions"]["T2"]["si"]["C3"])


def _two_short_files(folder):
    folder.mkdir()
    for run in ("03", "05"):
        raw = mne.io.read_raw_edf(DATA / f"S001R{run}.edf", preload=True, verbose="error").crop(0, 40)
        mne.export.export_raw(folder / f"S001R{run}.edf", raw, fmt="edf", overwrite=True, verbose="error")
    return folder


def test_dataset_on_joblib_and_on_a_dask_cluster_give_the_same_group_json(tmp_path):
    from distributed import LocalCluster

    data = _two_short_files(tmp_path / "eegmmidb")
    # the 40-s crops' first T0 (4.2 s) is too short a baseline: R01's rest run gives it
    common = dict(protocol=PROTOCOLS / "action-observation-research.toml", baseline_label="T0",
                  baseline_from=DATA / "S001R01.edf")
    a = replay_many([data], out=tmp_path / "A", jobs=2, **common)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        b = replay_many([data], out=tmp_path / "B", scheduler=cluster.scheduler_address, **common)
    ga = json.loads((tmp_path / "A" / "group.json").read_text())
    gb = json.loads((tmp_path / "B" / "group.json").read_text())
    assert ga == gb
    assert list(ga["subjects"]) == ["S001"] and ga["n_recordings"] == 2
    # T0 is rest in both runs and pools; T1 is the left fist in R03 and both fists in R05: kept apart per run
    assert ga["subjects"]["S001"]["T0"]["n_recordings"] == 2 and ga["group"]["T0"]["n_subjects"] == 1
    assert ga["group"]["T0"]["combined"] == pytest.approx(np.mean([s["conditions"]["T0"]["combined"]
                                                                   for s in a.values()]))
    assert "T1" not in ga["subjects"]["S001"] and ga["subjects"]["S001"]["R05/T1"]["n_recordings"] == 1
    assert [s["run"] for s in a.values()] == ["R03", "R05"] and len(ga["kept_apart"]) == 2
    assert sorted(p.name for p in (tmp_path / "B").iterdir()) == ["S001R03_edf", "S001R05_edf", "group.json",
                                                                 "summary.json"]
    assert {s["mode"] for s in b.values()} == {"causal"}


def test_bids_dataset_is_found_with_mne_bids(tmp_path):
    from mne_bids import BIDSPath, write_raw_bids

    for sub, run in (("01", "03"), ("02", "05")):
        raw = mne.io.read_raw_edf(DATA / f"S001R{run}.edf", preload=True, verbose="error").crop(0, 30)
        write_raw_bids(raw, BIDSPath(subject=sub, task="motor", root=tmp_path / "bids", datatype="eeg"),
                       overwrite=True, verbose=False, allow_preload=True, format="EDF")
    replay_many([tmp_path / "bids"], protocol=PROTOCOLS / "action-observation-research.toml",
                baseline_label="T0", out=tmp_path / "out", mode="offline")
    g = json.loads((tmp_path / "out" / "group.json").read_text())
    assert sorted(g["subjects"]) == ["01", "02"] and g["group"]["T1"]["n_subjects"] == 2
    lo, hi = g["group"]["T1"]["ci95"]
    assert lo <= g["group"]["T1"]["combined"] <= hi


def test_label_map_names_conditions_per_file(tmp_path, s001):
    from neurofeed.analysis.replay import labels_for, read_label_map

    f = tmp_path / "labels.json"
    f.write_text(json.dumps({"*R0[34].edf": {"T1": "left-fist", "T2": "right-fist"},
                             "*R0[56].edf": {"T0": "rest", "T1": "fists", "T2": "feet"}}))
    m = read_label_map(f)
    assert labels_for(DATA / "S001R03.edf", m) == {"T1": "left-fist", "T2": "right-fist"}
    assert labels_for(DATA / "S001R01.edf", m) is None
    proto = load_protocol(PROTOCOLS / "action-observation-research.toml")
    res = replay_file(DATA / "S001R05.edf", proto, "rest", mode="offline", label_map=labels_for(DATA / "S001R05.edf", m))
    assert sorted(res["conditions"]) == ["feet", "fists", "rest"]
    assert res["conditions"]["feet"]["si"] == pytest.approx(s001["offline"]["05"]["T2"]["si"])
    f.write_text('{"*.edf": ["T1", "fists"]}')
    with pytest.raises(Exception, match="label-map .*labels.json: expected"):
        read_label_map(f)


def test_replay_on_a_tls_scheduler_with_certificates_from_files(tmp_path):
    """``--scheduler tls://`` with ``distributed.Security`` from PEM files (issue 22); plain tcp://
    to it is refused, and wrong or missing certificate options are refused in one line."""
    pytest.importorskip("distributed")
    from distributed import LocalCluster, Security

    temp = Security.temporary()  # one self-signed certificate: the cluster's CA, and the client's
    pem = {"ca_file": tmp_path / "ca.pem", "cert": tmp_path / "client.pem", "key": tmp_path / "client.key"}
    pem["ca_file"].write_text(temp.tls_ca_file)
    pem["cert"].write_text(temp.tls_client_cert)
    pem["key"].write_text(temp.tls_client_key)
    data = tmp_path / "one"
    data.mkdir()
    raw = mne.io.read_raw_edf(DATA / "S001R03.edf", preload=True, verbose="error").crop(0, 40)
    mne.export.export_raw(data / "S001R03.edf", raw, fmt="edf", overwrite=True, verbose="error")
    common = dict(protocol=PROTOCOLS / "action-observation-research.toml", baseline_label="T0",
                  baseline_from=DATA / "S001R01.edf")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tls://", security=temp,
                      dashboard_address=None) as cluster:
        addr = cluster.scheduler_address
        assert addr.startswith("tls://")
        out = replay_many([data], out=tmp_path / "T", scheduler=addr, tls=pem, **common)
        assert len(out) == 1 and (tmp_path / "T" / "group.json").exists()
        r = run_cli("replay", data, "--protocol", common["protocol"], "--baseline-label", "T0", "--baseline-from",
                    common["baseline_from"], "--scheduler", addr.replace("tls://", "tcp://"), "--out", tmp_path / "U")
        assert r.returncode != 0 and "cannot connect" in r.stderr and "Traceback" not in r.stderr
    for args, says in ((["--scheduler", "tls://127.0.0.1:1"], "tls:// needs --tls-ca-file, --tls-cert, --tls-key"),
                       (["--scheduler", "tcp://127.0.0.1:1", "--tls-cert", pem["cert"]],
                        "--tls-cert applies to a tls:// scheduler"),
                       (["--scheduler", "127.0.0.1:1"], "give tls://HOST:PORT")):
        r = run_cli("replay", data, "--protocol", common["protocol"], "--baseline-label", "T0", *args,
                    "--out", tmp_path / "V")
        assert r.returncode != 0 and says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_replay_of_a_bids_dataset_notches_its_power_line_frequency(tmp_path, caplog):
    """BIDS ``PowerLineFrequency`` = 60 (EEGMMIDB was recorded on 60-Hz mains) is what the chain
    notches, over the 50-Hz default and over --line-freq; a file that says nothing gets 50 Hz and
    one warning line naming the assumption (issue 22)."""
    from mne_bids import BIDSPath, write_raw_bids

    from neurofeed.analysis.replay import RecordedFile

    raw = mne.io.read_raw_edf(DATA / "S001R03.edf", verbose="error")
    raw.info["line_freq"] = 60
    root = tmp_path / "bids"
    bp = BIDSPath(subject="001", task="motor", run=3, root=root, datatype="eeg")
    write_raw_bids(raw, bp, overwrite=True, verbose=False)
    edf = next(root.rglob("*_eeg.edf"))
    assert json.loads(next(root.rglob("*_eeg.json")).read_text())["PowerLineFrequency"] == 60
    rec = RecordedFile(edf, line_hz=50.0)  # --line-freq 50 given: the dataset's own word wins
    assert (rec.line_hz, rec.line_hz_from) == (60.0, "BIDS PowerLineFrequency")
    res = replay_many([root], protocol=PROTOCOLS / "action-observation-research.toml", baseline_label="T0",
                      baseline_from=DATA / "S001R01.edf", out=tmp_path / "out")
    (summary,) = res.values()
    assert summary["line_freq"] == 60.0 and summary["line_freq_from"] == "BIDS PowerLineFrequency"
    caplog.clear()
    with caplog.at_level("WARNING", logger="neurofeed.analysis.replay"):
        plain = RecordedFile(DATA / "S001R03.edf")
    assert (plain.line_hz, plain.line_hz_from) == (50.0, "assumed")
    (msg,) = [r.getMessage() for r in caplog.records]
    assert "assuming 50 Hz" in msg and "S001R03.edf" in msg and "\n" not in msg
    assert RecordedFile(DATA / "S001R03.edf", line_hz=60.0).line_hz == 60.0


def _with_eog_ecg(raw):
    """``raw`` with a blinking EOG channel and a 1-mV ECG channel added (V, as MNE holds them)."""
    n, sf = raw.n_times, raw.info["sfreq"]
    t = np.arange(n) / sf
    eog = 300e-6 * np.exp(-(((t % 4.0) - 2.0) / 0.1) ** 2)  # a 300-µV blink every 4 s
    ecg = 1e-3 * np.exp(-(((t % 0.8) - 0.4) / 0.01) ** 2)  # 1-mV R waves at 75 /min
    extra = mne.io.RawArray(np.vstack([eog, ecg]), mne.create_info(["EOG1", "ECG"], sf, ["eog", "ecg"]),
                            verbose="error")
    out = raw.copy().add_channels([extra], force_update_info=True)
    out.set_annotations(raw.annotations)
    return out


def test_eog_and_ecg_channels_change_nothing(tmp_path):
    """The average reference and the gates use EEG channels only: a file with EOG/ECG channels
    added (typed in a FIF; named EOG…/ECG… in an EDF; or typed with --channel-types over a file that
    calls them EEG) gives the
    same SI as the same file without them, bit for bit (issue 22)."""
    edf = mne.io.read_raw_edf(DATA / "S001R03.edf", preload=True, verbose="error").crop(0, 40)
    raw = mne.io.RawArray(edf.get_data(), edf.info, verbose="error")  # a plain Raw (no EDF scale factors)
    raw.set_annotations(edf.annotations)
    raw.save(tmp_path / "plain_raw.fif", verbose="error")
    extra = _with_eog_ecg(raw)
    extra.save(tmp_path / "extra_raw.fif", verbose="error")
    mne.export.export_raw(tmp_path / "plain.edf", raw, fmt="edf", overwrite=True, verbose="error")
    mne.export.export_raw(tmp_path / "extra.edf", extra, fmt="edf", overwrite=True, verbose="error")
    renamed = extra.copy().rename_channels({"EOG1": "X1", "ECG": "X2"}).set_channel_types({"X1": "eeg", "X2": "eeg"})
    renamed.save(tmp_path / "untyped_raw.fif", verbose="error")  # typed EEG in the file: wrongly
    aor = load_protocol(PROTOCOLS / "action-observation-research.toml")
    assert 'reference = ["laplacian", "average"]' in aor.text
    car = parse_protocol(aor.text.replace('reference = ["laplacian", "average"]', 'reference = "average"'), "car.toml")
    common = dict(protocol=car, baseline_label="T0", baseline_from=DATA / "S001R01.edf")
    ref = {".fif": replay_file(tmp_path / "plain_raw.fif", **common), ".edf": replay_file(tmp_path / "plain.edf", **common)}
    si_col = ref[".fif"]["columns"].index("si_combined")
    assert np.isfinite(ref[".fif"]["feedback"][:, si_col]).sum() > 100
    for path, types in ((tmp_path / "extra_raw.fif", None), (tmp_path / "extra.edf", None),
                        (tmp_path / "untyped_raw.fif", {"X1": "eog", "X2": "ecg"})):
        res = replay_file(path, channel_types=types, **common)
        # left out of the replay (a FIF's typed ECG is not even read: MNE types it; EDFs say it by label)
        assert res["channels_left_out"][0] in ("EOG1 (eog)", "X1 (eog)"), (path, res["channels_left_out"])
        assert np.array_equal(res["feedback"], ref[path.suffix]["feedback"], equal_nan=True), path
    # without the types the blink and the R waves enter the average reference: the SI changes
    offline = dict(common, baseline_from=None, mode="offline")  # (66 channels: not R01's montage)
    res, plain = (replay_file(tmp_path / f, **offline) for f in ("untyped_raw.fif", "plain_raw.fif"))
    assert res["channels_left_out"] == []
    assert np.nanmax(np.abs(res["feedback"][:, si_col] - plain["feedback"][:, si_col])) > 0.05
