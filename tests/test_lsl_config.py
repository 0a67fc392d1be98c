"""LSL that fits a lab: liblsl reads the user's lsl_api.cfg (SessionID, KnownPeers, ResolveScope)
rather than neurofeed's quiet default; outlets carry a source id unique per session; notes stay off
the network."""

import os
import subprocess
import sys
import textwrap

from tests.conftest import ROOT

CODE = textwrap.dedent("""
    import os, sys
    import neurofeed
    from neurofeed.live.lsl_outlets import LSLOutlets, session_source_id
    out = LSLOutlets(["C3", "C4"], name="nf-cfg-test", source_id=session_source_id("nf-cfg-test", "P07", "20260101-120000"))
    info = out.values.get_info()
    print(os.environ.get("LSLAPICFG", ""))
    print(info.session_id())
    print(info.source_id())
    print(out.markers.get_info().source_id())
""")


def _run(home, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("LSLAPICFG", "PYTHONPATH")}
    env["HOME"] = str(home)
    r = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def test_the_users_lsl_api_cfg_is_read_and_its_session_id_used(tmp_path):
    assert not os.path.exists("/etc/lsl_api/lsl_api.cfg"), "a system-wide lsl_api.cfg would be read first here"
    home, work = tmp_path / "home", tmp_path / "work"
    (home / "lsl_api").mkdir(parents=True)
    work.mkdir()
    (home / "lsl_api" / "lsl_api.cfg").write_text("[lab]\nSessionID = nf-lab-session-42\n[log]\nlevel = -2\n")
    lslapicfg, session_id, source_id, marker_id = _run(home, work)
    assert lslapicfg == ""  # neurofeed left liblsl to find the user's file
    assert session_id == "nf-lab-session-42"
    assert source_id == "nf-cfg-test-P07-20260101-120000-feedback"
    assert marker_id == "nf-cfg-test-P07-20260101-120000-events"


def test_without_a_config_of_the_users_neurofeeds_quiet_one_is_used(tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    lslapicfg, session_id, _, _ = _run(home, work)
    assert lslapicfg == str(ROOT / "neurofeed" / "hardware" / "lsl_api.cfg") or lslapicfg.endswith(os.path.join("hardware", "lsl_api.cfg"))
    assert session_id == "default"


def test_session_outlets_are_unique_per_session_and_named_by_the_prefix(tmp_path):
    import pylsl

    from neurofeed.hardware.sources.simulated import MuSimulator, SimulatedSource
    from neurofeed.live.session import build_session
    from neurofeed.protocol.schema import load_protocol
    from tests.conftest import PROTOCOLS

    proto = load_protocol(PROTOCOLS / "demo.toml")
    pipe, rec = build_session(SimulatedSource(MuSimulator(seed=1), realtime=False, duration_s=5), proto, "P09",
                              out_root=tmp_path, lsl=True, lsl_name="nf-room2")
    from neurofeed.live.lsl_outlets import LSLOutlets

    out = next(s for s in pipe.sinks if isinstance(s, LSLOutlets))
    info = out.values.get_info()
    assert info.name() == "nf-room2-feedback" and out.markers.get_info().name() == "nf-room2-events"
    folder_stamp = rec.folder.name.split("_")[0]
    assert info.source_id() == f"nf-room2-P09-{folder_stamp}-feedback"
    # clinician notes are not broadcast; other events are
    inlet = pylsl.StreamInlet(pylsl.resolve_byprop("source_id", f"nf-room2-P09-{folder_stamp}-events", 1, 10.0)[0])
    inlet.open_stream(timeout=10.0)
    from neurofeed.core.events import Event

    out.on_events([Event(0, 0.0, 0.0, "note/the participant's name is ..."), Event(1, 0.004, 0.0, "marker/looked away")])
    got = []
    while not got:
        sample, _ = inlet.pull_sample(timeout=10.0)
        assert sample is not None, "no marker arrived"
        got.append(sample[0])
    assert got == ["marker/looked away"]
    rec.close(finalize=False)
