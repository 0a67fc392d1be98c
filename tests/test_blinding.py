"""Sealed blinding (issue 22): a blinded session's files, LSL outlets and report cannot tell the arm;
the key file unseals the live values."""

import json
import re

import numpy as np
import pytest

from neurofeed.core.record import field_of
from neurofeed.hardware.sources.simulated import MuSimulator, SimulatedSource, SimulationScript
from neurofeed.live.session import build_session, finish_session
from neurofeed.live.sham import SEALED_ATTRS, SEALED_BLOCK, SEALED_EVENTS, SEALED_FILE, SEALED_SUMMARY
from neurofeed.protocol.schema import load_protocol, parse_protocol
from neurofeed.recording.journal import read_journal
from tests.conftest import PROTOCOLS, pull_until, run_cli, wait_until

SCALE = 0.3


def _session(tmp, protocol, code, lsl_name=None, seed=9, **kw):
    """Run a session as fast as it goes; with ``lsl_name``, capture both outlets on loopback."""
    import pylsl

    src = SimulatedSource(MuSimulator(script=SimulationScript.alternating(60), seed=seed), realtime=False)
    pipe, rec = build_session(src, protocol, code, tmp, seconds_scale=SCALE, lsl=lsl_name is not None,
                              lsl_name=lsl_name or "neurofeed", **kw)
    capture = None
    if lsl_name:
        out = next(getattr(s, "sink", s) for s in pipe.sinks if hasattr(getattr(s, "sink", s), "markers"))
        fb = pylsl.StreamInlet(pylsl.resolve_byprop("name", f"{lsl_name}-feedback", 1, 10.0)[0], max_buflen=3600)
        ev = pylsl.StreamInlet(pylsl.resolve_byprop("name", f"{lsl_name}-events", 1, 10.0)[0], max_buflen=3600)
        fb.open_stream(30.0)
        ev.open_stream(30.0)
        wait_until(lambda: out.values.have_consumers() and out.markers.have_consumers(), what="the inlets")
    pipe.run()
    finish_session(pipe, rec)
    if lsl_name:
        n = pipe.published
        info = fb.info()
        ch = info.desc().child("channels").child("channel")
        labels = []
        while not ch.empty():
            labels.append(ch.child_value("label"))
            ch = ch.next_sibling()
        samples = pull_until(fb, lambda got: len(got) >= n)
        markers = pull_until(ev, lambda got: any(m[0].startswith("session_end") for m in got))
        capture = {"labels": labels, "values": np.array(samples, dtype=np.float64), "events": [m[0] for m in markers]}
    return rec.folder, capture


@pytest.fixture(scope="module")
def arms(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("blind")
    demo = load_protocol(PROTOCOLS / "demo.toml")
    source, _ = _session(tmp, demo, "P01", seed=3)  # the yoked sham shows this session's feedback
    # one trial, one protocol name: the arms' protocols differ only in the [sham] table
    real_proto = parse_protocol(demo.text, "trial.toml")
    sham_proto = parse_protocol(demo.text + '\n[sham]\nmode = "yoked"\n', "trial.toml")
    key = tmp / "trial-key.json"
    # the two arms: the same simulated participant (seed 9), so their live values are the same
    real, real_lsl = _session(tmp, real_proto, "P10", lsl_name="nf-blind-a", blind_key=key)
    sham, sham_lsl = _session(tmp, sham_proto, "P11", lsl_name="nf-blind-b", blind_key=key, yoke_from=source)
    return {"real": (real, real_lsl), "sham": (sham, sham_lsl), "key": key, "tmp": tmp}


def _kind(text):
    """An event's kind, without its values (``baseline/…`` -> ``baseline``)."""
    return re.split(r"[/=]", text)[0]


def _rater_view(folder, capture, report_dir):
    """Everything a rater reads, reduced to what does not vary between two sessions of one arm."""
    import mne

    j = read_journal(folder)
    cols = j.columns
    on = j.feedback[:, cols.index("feedback_on")] > 0
    shown = j.feedback[:, cols.index("feedback")]
    sealed = [i for i, c in enumerate(cols) if field_of(c).attr in SEALED_ATTRS]
    bdf = next(folder.glob("*.bdf"))
    raw = mne.io.read_raw_bdf(bdf, preload=True, verbose="error")
    extra = [i for i, c in enumerate(raw.ch_names) if field_of(c) is not None and field_of(c).attr in SEALED_ATTRS]
    side = json.loads((folder / "sidecar.json").read_text())
    header = json.loads((folder / "header.json").read_text())
    html = (report_dir / "index.html").read_text()
    lsl_sealed = [i for i, c in enumerate(capture["labels"]) if field_of(c).attr in SEALED_ATTRS]
    return {
        "files": sorted(p.name for p in folder.iterdir() if p.suffix != ".bdf"),
        "header": {k: v for k, v in header.items() if k not in ("participant", "started", "source")},
        "columns": cols,
        # a clear column that follows the shown feedback (as live_feedback does in the real arm)
        "clear columns following the shown feedback": sorted(
            c for i, c in enumerate(cols) if i != cols.index("feedback") and on.any()
            and np.mean(np.isclose(j.feedback[on, i], shown[on])) > 0.9),
        "journal sealed columns all NaN": bool(np.isnan(j.feedback[:, sealed]).all()),
        "journal events": sorted({_kind(e["text"]) for e in j.events}),
        "sealed events in journal": sorted({e["text"] for e in j.events if e["text"].startswith(SEALED_EVENTS)}),
        "bdf labels": raw.ch_names,
        "bdf sealed signals constant": bool(np.all(np.ptp(raw.get_data(picks=extra), axis=1) == 0)),
        "bdf annotations": sorted({_kind(d) for d in raw.annotations.description}),
        "sidecar keys": sorted(side),
        "sidecar sealed": [side.get(k) for k in SEALED_SUMMARY] + [b.get(k) for b in side["blocks"] for k in SEALED_BLOCK],
        "lsl labels": capture["labels"],
        "lsl sealed all NaN": bool(np.isnan(capture["values"][:, lsl_sealed]).all()),
        "lsl events": sorted({_kind(e) for e in capture["events"]}),
        "report sections": re.findall(r"<h2>(.*?)</h2>", html),
        "report figures": sorted(p.name for p in report_dir.glob("*.png")),
        "report arm": re.findall(r"arm <b>(.*?)</b>", html),
        "report reward rate": re.findall(r"<th>reward rate \(%\)</th>.*?<td>(.*?)</td>", html)[:1],
    }


def test_a_rater_cannot_tell_the_arm_from_files_lsl_or_report(arms):
    views = {}
    for arm in ("real", "sham"):
        folder, capture = arms[arm]
        r = run_cli("report", folder, "--out", arms["tmp"] / f"report-{arm}")
        assert r.returncode == 0 and "arm: blinded" in r.stdout, r.stderr
        views[arm] = _rater_view(folder, capture, arms["tmp"] / f"report-{arm}")
    real, sham = views["real"], views["sham"]
    assert real["journal sealed columns all NaN"] and real["lsl sealed all NaN"] and real["bdf sealed signals constant"]
    assert real["clear columns following the shown feedback"] == [] and real["sealed events in journal"] == []
    assert SEALED_FILE in real["files"] and set(real["sidecar sealed"]) == {None}
    assert real["report arm"] == ["blinded"] and real["report reward rate"] == ["—"]
    assert not any(e in real["lsl events"] for e in SEALED_EVENTS)
    differ = {k: (real[k], sham[k]) for k in real if real[k] != sham[k]}
    assert differ == {}


def test_unblind_restores_both_arms(arms):
    from neurofeed.analysis.replay import replay_journal
    from neurofeed.live.sham import unseal

    key, tmp = arms["key"], arms["tmp"]
    for arm, arm_text in (("real", "arm: real"), ("sham", "arm: sham (yoked from")):
        folder = arms[arm][0]
        r = run_cli("report", folder, "--out", tmp / f"unblinded-{arm}", "--unblind", key)
        assert r.returncode == 0 and arm_text in r.stdout, r.stderr
        html = (tmp / f"unblinded-{arm}" / "index.html").read_text()
        assert "Shown and live feedback (unblinded)" in html
        differ = float(re.search(r"<th>updates where shown ≠ live \(%\)</th></tr><tr>(?:<td>.*?</td>){2}<td>(.*?)</td>",
                                 html).group(1))
        assert (differ == 0.0) if arm == "real" else (differ > 25.0)
        sealed = unseal(folder, key)
        j = read_journal(folder)
        c = j.columns
        assert sealed["rows"].shape == j.feedback.shape
        assert np.isfinite(sealed["rows"][:, c.index("si_combined")]).sum() > 200  # the live SI, kept
        shown, live = (sealed["rows"][:, c.index(k)] for k in ("feedback", "live_feedback"))
        assert np.array_equal(shown, j.feedback[:, c.index("feedback")])  # the clear shown values
        assert np.array_equal(shown, live) == (arm == "real")
        assert any(e["text"].startswith("reward_on") for e in sealed["events"])
        assert sealed["summary"]["blocks"] and "si_pooled" in sealed["summary"]["blocks"][-1]
        res = replay_journal(folder, unblind=key)  # the unsealed session still replays bit-exact
        assert np.array_equal(res["recorded"], res["feedback"], equal_nan=True)
        blind = replay_journal(folder)  # and replays blinded without the key
        assert np.isnan(blind["feedback"][:, c.index("live_feedback")]).all()


def test_a_wrong_key_is_refused_in_one_line(arms, tmp_path):
    other = tmp_path / "other-key.json"
    doc = json.loads(arms["key"].read_text())
    real, sham = (f"{arms[a][0].parent.name}/{arms[a][0].name}" for a in ("real", "sham"))
    doc["sessions"][real]["seal_key"] = doc["sessions"][sham]["seal_key"]
    other.write_text(json.dumps(doc))
    r = run_cli("report", arms["real"][0], "--out", tmp_path / "r", "--unblind", other)
    assert r.returncode != 0 and "does not open" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_sealed_file_cut_short_by_a_crash_still_opens(arms, tmp_path):
    import shutil

    from neurofeed.live.sham import unseal

    src = arms["sham"][0]
    folder = tmp_path / src.parent.name / src.name  # the key file's entry is participant/folder
    shutil.copytree(src, folder)
    whole = unseal(folder, arms["key"])
    data = (folder / SEALED_FILE).read_bytes()
    (folder / SEALED_FILE).write_bytes(data[:-40])  # the last token half written
    cut = unseal(folder, arms["key"])
    assert cut["summary"] == {} and np.array_equal(cut["rows"], whole["rows"], equal_nan=True)  # the summary was the last line
