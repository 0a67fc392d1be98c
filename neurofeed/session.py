"""Opening sources and running a live session (the `neurofeed session` command's body)."""

from __future__ import annotations

import logging
import os

import numpy as np
import sys
from pathlib import Path

from .boards import BoardConfig, get_board
from .errors import NeurofeedError, SourceError
from .pipeline import Pipeline, Processor
from .protocol.schema import Protocol

log = logging.getLogger(__name__)


def parse_channel_map(text: str | None) -> dict:
    """``"AUX1=C3,EXG2=C4"`` -> ``{"AUX1": "C3", "EXG2": "C4"}`` with a clear error."""
    if not text:
        return {}
    out = {}
    for part in text.split(","):
        if "=" not in part:
            raise NeurofeedError(f"--channel-map entry {part!r} must be BOARD_NAME=10-10_NAME, e.g. AUX1=C3.")
        k, v = (s.strip() for s in part.split("=", 1))
        out[k] = v
    return out


def simulated_script(protocol: Protocol | None, seconds_scale: float = 1.0):
    """The simulated participant: suppresses mu by 40 % for 4 s in every 8 s, with a blink
    every 15 s and a 1-s EMG burst every 30 s (to show the gates)."""
    from .sources.simulated import SimulationScript

    total = (protocol.total_duration_s() * seconds_scale) if protocol else 600.0
    return SimulationScript.alternating(total + 60, emg_every_s=30.0, blink_every_s=15.0)


def open_source(board: str | None = None, *, board_id=None, serial_port="", mac_address="", file="", lsl_name=None,
                lsl_type=None, channel_map=None, protocol: Protocol | None = None, seconds_scale=1.0,
                realtime=True, chunk_size=None, seed=None):
    """Open the source a user named on the command line (not started yet).

    ``board`` is a config name (``configs/*.toml``), ``"lsl"`` or ``"file"``; ``board_id``
    alone is the escape hatch for any BrainFlow board.
    """
    cmap = channel_map or {}
    if board == "lsl" or lsl_name or lsl_type:
        from .sources.lsl import LSLSource

        return LSLSource(name=lsl_name, stype=lsl_type or "EEG", channel_map=cmap)
    if board == "file":
        from .sources.edf import FileSource

        if not file:
            raise SourceError("--board file needs --file PATH (EDF, BDF or FIF).")
        return FileSource(file, chunk_size=chunk_size, realtime=realtime, channel_map=cmap)
    if board is None and board_id is None:
        raise SourceError("Name the board with --board: e.g. --board simulated (no headset), or --board cyton "
                          "--serial-port /dev/ttyUSB0 (see `neurofeed boards`); or --board-id N, --lsl-name NAME.")
    cfg = get_board(board) if board else BoardConfig(name=f"board-{board_id}", board_id=board_id)
    if cfg.board_id == "simulated":
        from .sources.base import rename_channels
        from .sources.simulated import MuSimulator, SimulatedSource

        names = rename_channels(cfg.channel_names, cmap, "board simulated")
        if seed is None:  # a different simulated participant each session; the seed is recorded
            seed = int(np.random.default_rng().integers(2 ** 31))
        sim = MuSimulator(sfreq=cfg.sfreq or 250.0, ch_names=names, seed=seed, line_hz=cfg.line_hz,
                          script=simulated_script(protocol, seconds_scale))
        return SimulatedSource(sim, chunk_size=chunk_size or 10, realtime=realtime, range_uv=cfg.range_uv)
    from .sources.brainflow import AUX_ENABLE_COMMAND, BrainFlowSource, aux_rows, resolve_board_id

    # A Muse's AUX electrode is read (and enabled with "p50") when the channel map names it.
    aux = aux_rows(resolve_board_id(board_id if board_id is not None else cfg.board_id))
    aux = {k: v for k, v in aux.items() if k in cmap}
    return BrainFlowSource(cfg, serial_port=serial_port, mac_address=mac_address, file=file,
                           board_id=board_id, channel_map=cmap, extra_rows=aux,
                           config_commands=[AUX_ENABLE_COMMAND] if aux else [])


def has_display() -> bool:
    """True where a window can be shown (an X11/Wayland display, or macOS/Windows)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def build_session(source, protocol: Protocol, participant: str, out_root="recordings", seconds_scale=1.0,
                  record=True, lsl=True, marker_inlet=None, busy_poll=False):
    """Wire source, processor, recorder and outlets into a :class:`Pipeline` (not started).

    Returns ``(pipeline, recorder)``; ``recorder`` is None when not recording.
    """
    from .recording.writer import Recorder, check_participant_code, session_folder

    check_participant_code(participant)
    proc = Processor(protocol, source.sfreq, source.ch_names, source.range_uv, seconds_scale)
    sinks = []
    recorder = None
    if record:
        folder = session_folder(out_root, participant, protocol.name)
        header = {"participant": participant, "protocol": protocol.name, "protocol_text": protocol.text,
                  "seconds_scale": seconds_scale, "sfreq": source.sfreq, "ch_names": list(source.ch_names),
                  "targets": list(protocol.signal.targets), "range_uv": source.range_uv, "source": source.describe(),
                  "estimator": proc.chain.estimator.describe(), "reference": protocol.signal.reference}
        recorder = Recorder(folder, header, expected_s=protocol.total_duration_s() * seconds_scale + 60)
        sinks.append(recorder)
    if lsl:
        from .feedback.lsl_out import LSLOutlets

        sinks.append(LSLOutlets(protocol.signal.targets))
    if protocol.markers.mode == "external" and marker_inlet is None:
        from .sources.lsl import MarkerInlet

        marker_inlet = MarkerInlet(protocol.markers.stream)
    return Pipeline(source, proc, sinks, marker_inlet=marker_inlet, busy_poll=busy_poll), recorder


def finish_session(pipeline: Pipeline, recorder) -> dict:
    """Close the recording (sidecar + BDF) and return the session summary."""
    summary = pipeline.engine.summary()
    summary["timing"] = pipeline.probe.summary()
    summary["dropped_samples"] = getattr(pipeline.source, "dropped_samples", 0)
    summary["signal_lost_events"] = pipeline.lost_events
    summary["ring_overflow"] = pipeline.ring.overflow
    # --- latency helper: the participant's accuracy/delay curve and the designed delay in use ---
    summary["accuracy_curve"] = {f"{1000 * d:.0f}ms": r for d, r in pipeline.processor.accuracy_curve.items()}
    summary["delay_s"] = pipeline.processor.chain.delay_s
    # --- end latency helper ---
    if recorder is not None:
        bdf = recorder.close(summary)
        summary["recording"] = str(recorder.folder)
        summary["bdf"] = str(bdf) if bdf else None
    return summary


def print_summary(summary: dict, stream=None) -> None:
    """A short, readable end-of-session summary."""
    stream = stream or sys.stdout
    t = summary.get("timing", {})
    lag = t.get("sample_to_feedback_ms", {})
    rr = summary.get("reward_rate")
    lines = ["", "Session summary",
             f"  samples: {summary.get('samples')}   feedback time: {summary.get('feedback_s', 0):.1f} s   "
             f"gated: {summary.get('gated_s', 0):.1f} s   reward rate: {'—' if rr is None else f'{100 * rr:.0f} %'}",
             f"  baseline (µV²): {summary.get('baseline_uv2')}",
             f"  latency sample→feedback p50/p99: {lag.get('p50', float('nan')):.3f} / {lag.get('p99', float('nan')):.3f} ms",
             f"  dropped samples: {summary.get('dropped_samples', 0)}   signal-lost events: {summary.get('signal_lost_events', 0)}"]
    for b in summary.get("blocks", []):
        si = "—" if b.get("si_pooled") is None else " ".join(f"{v:+.2f}" for v in b["si_pooled"])
        rate = "—" if b["reward_rate"] is None else f"{100 * b['reward_rate']:.0f} %"
        lines.append(f"  {b['label']:<16s} {b['kind']:<13s} SI {si:>14s}  reward {rate:>5s}  gated {b['gated_s']:.1f} s")
    if summary.get("recording"):
        lines.append(f"  recording: {summary['recording']}")
    stream.write("\n".join(lines) + "\n")
