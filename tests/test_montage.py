"""Montages that fit the hardware: named montages per board, reference preferences with
fallbacks, `protocols check` per board without a device, line frequency, left/right by name."""

import json

import numpy as np
import pytest

from neurofeed.cli import main
from neurofeed.core.channels import hemisphere
from neurofeed.core.errors import NeurofeedError, ProtocolError
from neurofeed.dsp.spatial import AVERAGE_MIN_CHANNELS, explain_reference, resolve_reference, spatial_weights
from neurofeed.hardware.boards import get_board, list_boards, load_board_config
from neurofeed.hardware.montages import check_declared_montages, fit_protocol, require_fit
from neurofeed.protocol.engine import combine_si
from neurofeed.protocol.schema import load_protocol, parse_protocol
from tests.conftest import PROTOCOLS

SHIPPED = sorted(PROTOCOLS.glob("*.toml"))
CYTON_DEFAULT = ["Fp1", "Fp2", "C3", "C4", "P7", "P8", "O1", "O2"]
CYTON_MU = ["Fp1", "FC3", "C3", "CP3", "Cz", "FC4", "C4", "CP4"]
DAISY_MU = ["Fp1", "Fp2", "FC3", "FC4", "C5", "C3", "C1", "Cz", "C2", "C4", "C6", "CP3", "CP4", "FCz", "CPz", "Pz"]
DEMO = (PROTOCOLS / "demo.toml").read_text()
# advice that would rename a non-motor electrode as a motor site
RELABEL = ("channel-map", "TP9=", "AF7=", "AF8=", "TP10=", "Fp1=", "Fp2=", "=C3", "=C4", "relabel", "rename")


def _demo(old, new):
    assert old in DEMO
    return DEMO.replace(old, new, 1)


# -- the board configs' montages --------------------------------------------------------------
def test_board_montages_are_the_agreed_ones_and_read_brainflow_without_a_device():
    assert get_board("cyton").montage() == CYTON_DEFAULT  # BrainFlow's own names are the default
    assert get_board("cyton").montage("mu") == CYTON_MU
    assert get_board("cyton-daisy").montage("mu") == DAISY_MU
    assert get_board("ganglion").montage("mu") == ["Fp1", "C3", "Cz", "C4"]
    for muse in ("muse-2", "muse-s"):
        spec = get_board(muse).montage_spec("aux-c3")
        assert spec.channels == ["TP9", "AF7", "AF8", "TP10", "C3"]
        assert spec.other_rows == 1 and spec.board_config == ["p50"]


def test_every_montage_matches_the_boards_rows_and_keeps_brainflows_own_electrodes():
    from brainflow.board_shim import BoardShim

    from neurofeed.hardware.boards import resolve_board_id

    for board in list_boards():
        if board.board_id == "simulated":
            continue
        descr = BoardShim.get_board_descr(resolve_board_id(board.master_board or board.board_id))
        n_eeg, n_other = len(descr["eeg_channels"]), len(descr.get("other_channels", []))
        for name in board.montage_names():
            spec = board.montage_spec(name)
            assert len(spec.channels) == n_eeg + spec.other_rows, (board.name, name)
            assert spec.other_rows <= n_other, (board.name, name)
            if spec.other_rows and descr.get("eeg_names"):
                # the Muse's own electrodes keep their names; only the AUX electrode is placed at C3
                assert spec.channels[:n_eeg] == descr["eeg_names"].split(",")


def test_board_config_errors_are_one_line(tmp_path):
    bad = tmp_path / "b.toml"
    bad.write_text('name = "b"\nboard_id = "CYTON_BOARD"\n[montages.mu]\nchannels = ["Fp1", "M1", "C3"]\n')
    with pytest.raises(NeurofeedError, match=r"\[montages.mu\]: 'M1' is not a 10-10 site") as err:
        load_board_config(bad)
    assert "\n" not in str(err.value)
    bad.write_text('name = "b"\nboard_id = "CYTON_BOARD"\nline_hz = 55\n')
    with pytest.raises(NeurofeedError, match="line_hz is 55.*50.*60"):
        load_board_config(bad)
    with pytest.raises(NeurofeedError, match="no montage 'nope'; choose one of: default, mu"):
        get_board("cyton").montage("nope")


# -- reference preferences and fallbacks -----------------------------------------------------------
@pytest.mark.parametrize("montage, expected", [(CYTON_DEFAULT, "average"), (CYTON_MU, "laplacian"),
                                               (DAISY_MU, "laplacian")])
def test_every_shipped_protocol_resolves_a_reference(montage, expected):
    for path in SHIPPED:
        p = load_protocol(path)
        used, w = resolve_reference(montage, p.signal.targets, p.signal.reference, p.signal.bipolar)
        assert used == expected, path.name
        assert w.shape == (len(p.signal.targets), len(montage))
        np.testing.assert_allclose(w.sum(axis=1), 0.0, atol=1e-12)  # every reference here rejects a common signal


def test_the_session_uses_the_resolved_reference_and_the_line_frequency():
    from neurofeed.live.processor import Processor

    p = load_protocol("demo")
    proc = Processor(p, 250.0, CYTON_DEFAULT, 187500.0, line_hz=60.0)
    assert proc.reference_used == "average" and proc.chain.reference == "average"
    assert proc.chain.line_hz == 60.0
    assert [r for r, _ in proc.reference_skipped] == ["laplacian"]
    assert any(e.text == "reference/average" for e in proc.engine.events)
    proc = Processor(p, 250.0, CYTON_MU, 187500.0)
    assert proc.reference_used == "laplacian"
    c3 = proc.chain.weights[0]
    assert c3[CYTON_MU.index("C3")] == 1.0 and c3[CYTON_MU.index("FC3")] == c3[CYTON_MU.index("CP3")] == -0.5


def test_fallbacks_are_taken_in_order():
    t = ["C3", "C4"]
    assert resolve_reference(CYTON_MU, t, ["laplacian", "bipolar", "average"])[0] == "laplacian"
    used, w = resolve_reference(CYTON_MU, t, ["bipolar", "laplacian"])
    assert used == "bipolar"  # the default partner: the anterior neighbour
    assert w[0, CYTON_MU.index("FC3")] == -1.0 and w[1, CYTON_MU.index("FC4")] == -1.0
    assert resolve_reference(CYTON_DEFAULT, t, ["laplacian", "bipolar", "average", "raw"])[0] == "average"
    assert resolve_reference(CYTON_DEFAULT, t, ["laplacian", "raw", "average"])[0] == "raw"
    used, _, skipped = explain_reference(CYTON_DEFAULT, t, ["laplacian", "bipolar", "average"])
    assert [r for r, _ in skipped] == ["laplacian", "bipolar"] and "C3" in skipped[0][1]
    # a single string is one preference, no fallback
    assert resolve_reference(CYTON_MU, t, "average")[0] == "average"


def test_bipolar_partners_explicit_default_and_never_another_target():
    # an explicit partner missing from the montage makes bipolar unsupported (no silent default)
    with pytest.raises(NeurofeedError, match="partner TP9 of C3"):
        resolve_reference(CYTON_MU, ["C3"], ["bipolar"], {"C3": "TP9"})
    used, w = resolve_reference(["TP9", "AF7", "AF8", "TP10", "C3"], ["C3"], ["laplacian", "bipolar"], {"C3": "TP9"})
    assert used == "bipolar" and w[0, 0] == -1.0 and w[0, 4] == 1.0
    # Cz is the last default partner of C3, and skipped when Cz is itself a target
    assert resolve_reference(["Fp1", "C3", "Cz", "C4"], ["C3", "C4"], ["bipolar"])[1][0, 2] == -1.0
    with pytest.raises(NeurofeedError, match="no partner for C3"):
        resolve_reference(["Fp1", "C3", "Cz", "C4"], ["C3", "Cz", "C4"], ["bipolar"])
    # a homologous site is never a partner (C3-C4 would make both targets one signal)
    with pytest.raises(NeurofeedError, match="bipolar: no partner for C3"):
        resolve_reference(["C3", "C4"], ["C3", "C4"], ["bipolar"])


def test_average_needs_enough_channels_and_exclude_removes_neighbours():
    muse = ["TP9", "AF7", "AF8", "TP10", "C3"]
    assert len(muse) < AVERAGE_MIN_CHANNELS
    with pytest.raises(NeurofeedError) as err:
        resolve_reference(muse, ["C3"], ["laplacian", "average"])
    msg = str(err.value)
    assert "\n" not in msg and "laplacian: C3 has no neighbours" in msg and "average: only 5 channels" in msg
    # a bad neighbour is not used; the Laplacian keeps the other one, then falls back
    w = spatial_weights(CYTON_MU, ["C3"], "laplacian", exclude=["FC3"])
    assert w[0, CYTON_MU.index("CP3")] == -1.0 and w[0, CYTON_MU.index("FC3")] == 0.0
    assert resolve_reference(CYTON_MU, ["C3"], ["laplacian"], exclude=["FC3", "CP3"])[1][0, CYTON_MU.index("Cz")] == -1
    # with FC3, CP3 and Cz bad, 5 channels are left: too few to average, so the next preference
    assert resolve_reference(CYTON_MU, ["C3"], ["laplacian", "average", "raw"], exclude=["FC3", "CP3", "Cz"])[0] == "raw"


# -- protocols check: per board and montage, without a device ----------------------------------------
def test_protocols_check_on_cyton_prints_the_reference_each_will_use(capsys):
    files = [str(p) for p in SHIPPED]
    assert main(["protocols", "check", *files, "--board", "cyton"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(SHIPPED)
    for line, path in zip(out, SHIPPED):
        name = load_protocol(path).name
        assert line.startswith(f"ok   {name} on cyton (default montage): reference average (laplacian: C3")
    assert main(["protocols", "check", *files, "--board", "cyton", "--montage", "mu"]) == 0
    assert all(ln.endswith("reference laplacian") for ln in capsys.readouterr().out.splitlines())
    for montage in ("default", "mu"):
        assert main(["protocols", "check", *files, "--board", "cyton-daisy", "--montage", montage]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == len(SHIPPED) and all("reference laplacian" in ln for ln in lines)


def test_protocols_check_muse_aux_c3_and_all_boards(capsys):
    assert main(["protocols", "check", "muse-c3-gentle", "--board", "muse-2", "--montage", "aux-c3"]) == 0
    assert "ok   muse-c3-gentle on muse-2 (montage aux-c3): reference bipolar" in capsys.readouterr().out
    # every board x every montage: a line each; mismatches are listed, not failures, while a fit exists
    n_combos = sum(len(b.montage_names()) for b in list_boards())
    assert main(["protocols", "check", "demo", "--board", "all"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == n_combos
    assert any(ln.startswith("--   demo on muse-2 (montage aux-c3): [signal] targets need C4") for ln in out)


def test_protocols_check_failures_are_one_line_and_never_advise_relabelling(capsys):
    assert main(["protocols", "check", "demo", "--board", "muse-2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "C3, C4" in err and "cyton: default, mu" in err
    assert not any(bad in err for bad in RELABEL), err
    assert main(["protocols", "check", "muse-c3-gentle", "--board", "muse-s", "--montage", "default"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--montage aux-c3" in err and "C3 (AUX input)" in err
    assert not any(bad in err for bad in RELABEL), err
    assert main(["protocols", "check", "demo", "--board", "cyton", "--montage", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no montage 'nope'" in err


def test_no_message_anywhere_advises_relabelling():
    demo = load_protocol("demo")
    for muse in ("muse-2", "muse-s"):
        for montage in ("default", "aux-c3"):
            with pytest.raises(ProtocolError) as err:
                require_fit(demo, get_board(muse), montage)
            assert not any(bad in str(err.value) for bad in RELABEL), str(err.value)
    with pytest.raises(ProtocolError) as err:
        demo.check_montage(["TP9", "AF7", "AF8", "TP10"])
    msg = str(err.value)
    assert "place an electrode at C3 and C4" in msg and not any(bad in msg for bad in RELABEL)
    # the only protocol advice that changes placement names the montage and where each electrode goes
    lap = parse_protocol(_demo('reference = ["laplacian", "average"]', 'reference = "laplacian"'), "lap.toml")
    with pytest.raises(ProtocolError, match=r"--montage mu .*put an electrode at FC3 \(row 2\)"):
        require_fit(lap, get_board("cyton"))


def test_fit_reports_what_the_session_will_do():
    fit = fit_protocol(load_protocol("demo"), get_board("ganglion"), "mu")
    assert fit.ok and fit.reference_used == "laplacian" and fit.channels == ["Fp1", "C3", "Cz", "C4"]


# -- left / right by channel names ------------------------------------------------------------------
def test_hemisphere_by_name():
    assert [hemisphere(n) for n in ("C3", "C4", "Cz", "Fp1", "AF8", "T10", "FCz", "c3..", "EEG1", "AUX")] == \
        ["left", "right", "midline", "left", "right", "right", "midline", "left", None, None]


def test_left_right_and_asymmetry_follow_names_not_order():
    p = parse_protocol(_demo('targets = ["C3", "C4"]\ncombine = "mean"', 'targets = ["C4", "C3"]\ncombine = "asymmetry"'),
                       "swap.toml")
    assert p.signal.sides() == (1, 0)
    si = np.array([0.3, -0.2])  # C4, C3
    assert combine_si(si, "asymmetry", p.signal.sides()) == pytest.approx(0.3 - (-0.2))  # right − left
    assert combine_si(si, "left", p.signal.sides()) == -0.2
    assert combine_si(si, "right", p.signal.sides()) == 0.3


@pytest.mark.parametrize("targets, combine, needle", [
    ('["C3", "C1"]', "asymmetry", "exactly one left-hemisphere target (odd number, e.g. C3); of C3, C1: 2 are left (C3, C1)"),
    ('["C4", "Cz"]', "left", "exactly one left-hemisphere target (odd number, e.g. C3); of C4, Cz: none is left"),
    ('["C3", "Cz"]', "asymmetry", "exactly one right-hemisphere target"),
    ('["C3", "EEG2"]', "right", "'EEG2' is not one"),
])
def test_contradictory_sides_are_rejected_in_one_line(targets, combine, needle):
    text = _demo('targets = ["C3", "C4"]\ncombine = "mean"', f'targets = {targets}\ncombine = "{combine}"')
    with pytest.raises(ProtocolError) as err:
        parse_protocol(text, "bad.toml")
    msg = str(err.value)
    assert needle in msg and msg.startswith("bad.toml: [signal] combine") and "\n" not in msg


# -- line frequency: board config / CLI, never the protocol -----------------------------------------
def test_line_frequency_is_not_a_protocol_key_and_the_cli_checks_it(capsys):
    with pytest.raises(ProtocolError, match=r"\[signal\] line_hz is no longer a protocol key.*--line-freq"):
        parse_protocol(_demo('estimator = "wcfir"', 'estimator = "wcfir"\nline_hz = 60'), "old.toml")
    with pytest.raises(ProtocolError, match=r"reference is 'car'; expected one of 'raw', 'average'"):
        parse_protocol(_demo('reference = ["laplacian", "average"]', 'reference = ["laplacian", "car"]'), "r.toml")
    with pytest.raises(SystemExit) as ex:
        main(["session", "--board", "simulated", "--protocol", "demo", "--participant", "P01", "--line-freq", "55"])
    assert ex.value.code == 2 and "--line-freq" in capsys.readouterr().err


def test_sources_take_montage_and_line_frequency_from_config_or_cli():
    from neurofeed.live.session import open_source

    src = open_source("cyton", serial_port="/dev/null", montage="mu", line_freq=60)  # not started: no device
    assert src.ch_names == CYTON_MU and src.line_hz == 60.0 and src.config.selected_montage == "mu"
    assert open_source("cyton", serial_port="/dev/null").ch_names == CYTON_DEFAULT
    assert open_source("cyton", serial_port="/dev/null").line_hz == get_board("cyton").line_hz
    with pytest.raises(NeurofeedError, match="--montage mu applies to a board config"):
        open_source("file", file="x.edf", montage="mu")


def test_session_header_and_sidecar_record_reference_line_freq_and_montage(tmp_path):
    from neurofeed.live.session import build_session, finish_session, open_source

    p = load_protocol("demo")
    src = open_source("simulated", protocol=p, seconds_scale=0.05, realtime=False, seed=1, line_freq=60)
    pipe, rec = build_session(src, p, "P01", tmp_path, 0.05, lsl=False)
    header = json.loads((rec.folder / "header.json").read_text())
    assert header["reference_used"] == "laplacian" and header["line_freq"] == 60.0 and header["montage"] == "default"
    assert header["reference_preferences"] == ["laplacian", "average"]
    assert pipe.processor.chain.line_hz == 60.0
    pipe.start()
    assert pipe.wait(timeout=120), "the compressed demo did not finish"
    finish_session(pipe, rec)
    side = json.loads((rec.folder / "sidecar.json").read_text())
    assert (side["reference_used"], side["line_freq"], side["montage"]) == ("laplacian", 60.0, "default")


def test_placement_figure_is_written(tmp_path):
    from neurofeed.hardware.montages import plot_montage

    out = tmp_path / "montage-cyton-mu.png"
    plot_montage(get_board("cyton"), "mu", out)
    from matplotlib.image import imread

    img = imread(out)
    assert img.shape[0] > 300 and img.shape[1] > 300
    red = (img[..., 0] > 0.7) & (img[..., 1] < 0.3) & (img[..., 2] < 0.3)
    assert red.sum() > 100  # the montage's electrodes are highlighted


def test_channel_map_works_for_files_and_never_renames_a_headband_electrode(data_dir):
    from neurofeed.live.session import open_source

    f = data_dir / "S001R03.edf"
    src = open_source("file", file=str(f), channel_map={"T9": "M1"})
    assert "M1" in src.ch_names and "T9" not in src.ch_names and len(src.ch_names) == 64
    with pytest.raises(NeurofeedError, match=r"--channel-map names EEG9, not on file .*S001R03.edf"):
        open_source("file", file=str(f), channel_map={"EEG9": "C3"})
    with pytest.raises(NeurofeedError, match="two channels of .* the name C3"):
        open_source("file", file=str(f), channel_map={"FC5": "C3"})
    with pytest.raises(NeurofeedError) as err:
        open_source("muse-2", channel_map={"TP9": "C3"})
    msg = str(err.value)
    assert "built into the headband" in msg and "aux-c3" in msg and "\n" not in msg


def test_muse_aux_c3_montage_reads_the_aux_row_and_enables_it():
    from brainflow.board_shim import BoardIds, BoardShim

    from neurofeed.live.session import open_source

    src = open_source("muse-2", montage="aux-c3")  # BoardShim is built, nothing is opened
    aux_row = BoardShim.get_board_descr(BoardIds.MUSE_2_BOARD.value)["other_channels"][0]
    assert src.ch_names == ["TP9", "AF7", "AF8", "TP10", "C3"]
    assert int(src.rows[-1]) == aux_row and src.config_commands == ["p50"]
    assert open_source("muse-2").config_commands == [] and len(open_source("muse-2").rows) == 4


def _run_compressed(protocol, names, sfreq, line_hz=50.0):
    """Run ``protocol`` 20x compressed on simulated EEG carrying ``names``; returns the pipeline."""
    from neurofeed.hardware.sources.simulated import MuSimulator, SimulatedSource
    from neurofeed.live.pipeline import Pipeline
    from neurofeed.live.processor import Processor
    from neurofeed.live.session import simulated_script

    sim = MuSimulator(sfreq=sfreq, ch_names=names, seed=3, line_hz=line_hz, script=simulated_script(protocol, 0.05))
    pipe = Pipeline(SimulatedSource(sim, chunk_size=10, realtime=False, range_uv=187500.0),
                    Processor(protocol, sfreq, names, 187500.0, 0.05, line_hz=line_hz))
    pipe.start()
    try:
        assert pipe.wait(timeout=300), f"{protocol.name} did not finish"
    finally:
        pipe.stop()
    return pipe


def test_every_shipped_protocol_starts_and_completes_on_brainflows_default_cyton_montage():
    for path in SHIPPED:
        p = load_protocol(path)
        pipe = _run_compressed(p, CYTON_DEFAULT, 250.0, line_hz=60.0)
        assert pipe.error is None and pipe.engine.finished, path.name
        assert pipe.processor.reference_used == "average"
        summary = pipe.engine.summary()
        assert summary["baseline_uv2"] is not None and summary["feedback_s"] > 0, path.name


def test_daisy_mu_and_muse_aux_c3_montages_run():
    pipe = _run_compressed(load_protocol("demo"), DAISY_MU, 125.0)
    assert pipe.error is None and pipe.engine.finished and pipe.processor.reference_used == "laplacian"
    muse = get_board("muse-2").montage("aux-c3")
    pipe = _run_compressed(load_protocol("muse-c3-gentle"), muse, 256.0)
    assert pipe.error is None and pipe.engine.finished and pipe.processor.reference_used == "bipolar"
    w = pipe.processor.chain.weights
    assert w.shape == (1, 5) and w[0, muse.index("C3")] == 1.0 and w[0, muse.index("TP9")] == -1.0


def test_a_protocol_declares_where_the_muse_aux_electrode_sits(capsys, tmp_path):
    """muse-c3-gentle asks a Muse for its aux-c3 montage (the AUX electrode placed at C3): no
    --montage is needed, the line says whose choice it is, and --montage still wins."""
    from neurofeed.hardware.montages import protocol_montage

    p = load_protocol("muse-c3-gentle")
    assert p.signal.montage == {"muse-2": "aux-c3", "muse-s": "aux-c3"}
    for board in ("muse-2", "muse-s"):
        assert main(["protocols", "check", "muse-c3-gentle", "--board", board]) == 0
        assert f"ok   muse-c3-gentle on {board} (montage aux-c3): reference bipolar" in capsys.readouterr().out
        assert protocol_montage(p, get_board(board)) == ("aux-c3", "Montage aux-c3: AUX electrode at C3 (as the "
                                                                   "protocol asks)")
    assert protocol_montage(p, get_board("muse-2"), "default") == ("default", "")
    assert protocol_montage(p, get_board("cyton")) == (None, "")  # it asks nothing of a Cyton
    mu = protocol_montage(p, get_board("cyton"), "mu")[1]
    assert mu.startswith("Montage mu: ") and mu.endswith("(--montage mu)")
    # a montage the board does not have, or a board that does not exist: one line naming the key
    text = (PROTOCOLS / "muse-c3-gentle.toml").read_text()
    for bad, words in (('muse-2 = "aux-c3", muse-s = "aux-c3"', None),
                       ('muse-2 = "aux-c4"', ("aux-c4", "default, aux-c3")),
                       ('muse-3 = "aux-c3"', ("muse-3",))):
        t = text.replace('muse-2 = "aux-c3", muse-s = "aux-c3"', bad)
        if words is None:
            check_declared_montages(parse_protocol(t, "ok"))
            continue
        with pytest.raises(ProtocolError) as err:  # where the protocol meets the board configs
            check_declared_montages(parse_protocol(t, "bad"))
        msg = str(err.value)
        assert "[signal] montage" in msg and "\n" not in msg and all(w in msg for w in words), msg
