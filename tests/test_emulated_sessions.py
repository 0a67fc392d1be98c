"""Whole sessions on the emulated Cyton and Cyton-Daisy, read by BrainFlow's own driver: every
shipped protocol on every montage of those boards, and electrode offsets with drift that leave
the mu estimate as it was (real EEG from tests/data, resampled by MNE)."""

import time

import numpy as np
import pytest

from neurofeed.devtools.cyton_emulator import CytonEmulator, edf_signal, montage_names
from neurofeed.hardware.boards import get_board
from neurofeed.hardware.montages import fit_protocol
from neurofeed.hardware.sources.brainflow import BrainFlowSource
from neurofeed.live.processor import Processor
from neurofeed.protocol.schema import load_protocol
from tests.conftest import PROTOCOLS

EDF = "S001R03.edf"


def _signal(data_dir, board, montage, seconds):
    sfreq = 125.0 if board == "cyton-daisy" else 250.0
    return edf_signal(data_dir / EDF, montage_names(board, montage), sfreq)[:, : int(seconds * sfreq)]


def _stream(src, processors, timeout_s=300.0):
    """Feed every chunk of ``src`` to every processor whose session is not over, as the live
    acquisition thread does for one; stop when all are done."""
    src.start()
    t0 = time.monotonic()
    try:
        while not all(p.engine.finished for p in processors):
            assert time.monotonic() - t0 < timeout_s, "the emulated sessions did not finish"
            chunk = src.read()
            if chunk is None:
                continue
            for p in processors:
                if not p.engine.finished:
                    p.step(chunk.data)
    finally:
        src.stop()


@pytest.mark.parametrize("board,montage", [("cyton", "default"), ("cyton", "mu"), ("cyton-daisy", "default"),
                                           ("cyton-daisy", "mu")])
def test_every_protocol_starts_and_completes_on_the_emulated_board(board, montage, data_dir):
    cfg = get_board(board)
    protos = [load_protocol(p) for p in sorted(PROTOCOLS.glob("*.toml"))]
    fitting = [p for p in protos if fit_protocol(p, cfg, montage).ok]
    # every protocol fits every montage of these boards, BrainFlow's own included (through the
    # reference fallbacks: laplacian -> average where C3/C4 have no neighbours)
    assert len(fitting) == len(protos), [p.name for p in protos if p not in fitting]
    names = montage_names(board, montage)
    with CytonEmulator(_signal(data_dir, board, montage, 60), speed=30, daisy=board == "cyton-daisy") as emu:
        src = BrainFlowSource(cfg, serial_port=emu.port, channel_names=names)
        procs = [Processor(p, src.sfreq, src.ch_names, src.range_uv, seconds_scale=0.05) for p in fitting]
        _stream(src, procs)
    for p, proc in zip(fitting, procs):
        s = proc.engine.summary()
        assert proc.engine.finished, p.name
        assert s["baseline_uv2"] is not None and all(v > 0 for v in s["baseline_uv2"].values()), p.name
        assert [b["label"] for b in s["blocks"]] == [b.label for b in p.schedule()], p.name
        assert s["feedback_s"] > 0, (p.name, s["blocks"], proc.engine.events[-5:] if proc.engine.events else None)
        assert proc.reference_used in ("laplacian", "average", "bipolar"), p.name


def _session(data_dir, **emu_kw):
    proto = load_protocol("demo")
    x = _signal(data_dir, "cyton", "default", 70)
    with CytonEmulator(x, speed=15, loop=False, **emu_kw) as emu:
        src = BrainFlowSource(get_board("cyton"), serial_port=emu.port)
        proc = Processor(proto, src.sfreq, src.ch_names, src.range_uv)
        _stream(src, [proc])
    return proc.engine.summary()


def test_offsets_and_drift_through_brainflow_leave_baseline_and_block_si_unchanged(data_dir):
    clean = _session(data_dir)
    # ±50 mV electrode offsets (alternating in sign) drifting 5 µV/s, as a DC-coupled ADS1299 sends
    dirty = _session(data_dir, offsets_uv=50_000.0, drift_uv_per_s=5.0)
    b0 = np.array(list(clean["baseline_uv2"].values()))
    b1 = np.array(list(dirty["baseline_uv2"].values()))
    assert np.all(np.abs(b1 / b0 - 1) <= 0.05), (b0, b1)
    compared = 0
    for a, b in zip(clean["blocks"], dirty["blocks"]):
        assert a["label"] == b["label"]
        if a["si_pooled"] is not None:
            np.testing.assert_allclose(b["si_pooled"], a["si_pooled"], atol=0.02)
            compared += 1
    assert compared >= 3
