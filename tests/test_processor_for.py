"""One way to build a Processor from a source and a protocol (issue 25): a live session, the
replay of its journal, the replay of its BDF and ``replay --display`` of that BDF all build it
with :func:`~neurofeed.live.processor.processor_for`, and get the same processing: the same
rate, channels, mains notch, railing threshold, reference and chain. ``replay --display`` used to
drop the recorded mains frequency (50 Hz for a 60-Hz session) and take the range from every
signal of the file, the feedback channels included."""

import dataclasses
import shutil

import pytest

from neurofeed.analysis.replay import RecordedFile, display_pipeline, replay_journal
from neurofeed.hardware.sources.simulated import MuSimulator, SimulatedSource, SimulationScript
from neurofeed.live.processor import processor_for
from neurofeed.live.session import build_session, finish_session
from neurofeed.protocol.schema import load_protocol
from tests.conftest import PROTOCOLS


def _config(proc) -> dict:
    """What a Processor is built with (everything but who drives the blocks)."""
    chain = proc.chain
    return {"sfreq": proc.sfreq, "ch_names": list(proc.ch_names), "line_hz": proc.line_hz,
            "quality": dataclasses.asdict(chain.qcfg), "reference": proc.reference_used,
            "targets": list(chain.targets), "band_hz": tuple(chain.band_hz), "estimator": chain.estimator_name,
            "delay_s": chain.delay_s, "conditioning": repr(chain.describe()["conditioning"])}


@pytest.fixture(scope="module")
def session_60hz(tmp_path_factory):
    """A short simulated session recorded on 60-Hz mains (journal + BDF)."""
    out = tmp_path_factory.mktemp("p4for")
    proto = load_protocol(PROTOCOLS / "demo.toml")
    src = SimulatedSource(MuSimulator(script=SimulationScript.alternating(60), seed=3), realtime=False)
    pipe, rec = build_session(src, proto, "P41", out, seconds_scale=0.2, lsl=False, line_freq=60)
    live = _config(pipe.processor)
    pipe.run()
    finish_session(pipe, rec)
    # the BDF with its header.json, as a copy (or a BIDS export) keeps them: a file, not a session folder
    copied = out / "copied"
    copied.mkdir()
    bdf = shutil.copy(next(rec.folder.glob("*.bdf")), copied)
    shutil.copy(rec.folder / "header.json", copied)
    return {"folder": rec.folder, "bdf": bdf, "live": live, "protocol": proto}


def test_display_replay_gets_the_recorded_mains_frequency_and_range(session_60hz):
    live = session_60hz["live"]
    assert live["line_hz"] == 60.0
    pipe = display_pipeline(session_60hz["bdf"], PROTOCOLS / "demo.toml", speed="max")
    shown = _config(pipe.processor)
    assert shown["line_hz"] == 60.0  # the session's mains, not the 50-Hz default
    assert shown["quality"]["rail_uv"] == live["quality"]["rail_uv"]  # the recorded amplifier range
    assert shown["ch_names"] == live["ch_names"]  # the EEG rows; the feedback signals are not channels
    assert pipe.source.ch_names == live["ch_names"] and pipe.source.data.shape[0] == len(live["ch_names"])


def test_every_path_builds_the_same_processor(session_60hz):
    live, proto = session_60hz["live"], session_60hz["protocol"]
    seen = {}
    replay_journal(session_60hz["folder"], on_step=lambda proc, *_: seen.setdefault("journal", _config(proc)))
    configs = {"journal": seen["journal"],
               "file": _config(processor_for(RecordedFile(session_60hz["bdf"]), proto, external=True)),
               "display": _config(display_pipeline(session_60hz["bdf"], PROTOCOLS / "demo.toml").processor)}
    for path, cfg in configs.items():
        assert cfg == live, path
