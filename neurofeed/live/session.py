"""Opening sources and running a live session (the `neurofeed session` command's body)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import numpy as np

from ..core.errors import NeurofeedError, SourceError
from ..dsp.accuracy import curve_summary
from ..dsp.spatial import as_preferences
from ..hardware.boards import DEFAULT_MONTAGE, BoardConfig, check_line_freq, get_board
from ..hardware.sources.base import rename_channels
from ..protocol.schema import Protocol
from .carry import last_session_carry
from .pipeline import Pipeline
from .processor import Processor, processor_for

log = logging.getLogger(__name__)


def parse_channel_map(text: str | None) -> dict:
    """``"EEG1=C3,EEG2=C4"`` -> ``{"EEG1": "C3", "EEG2": "C4"}`` with a clear error."""
    if not text:
        return {}
    out = {}
    for part in text.split(","):
        if "=" not in part:
            raise NeurofeedError(f"--channel-map entry {part!r} must be SOURCE_NAME=10-10_SITE, e.g. EEG1=C3 (the "
                                 f"site the electrode really sits on).")
        k, v = (s.strip() for s in part.split("=", 1))
        out[k] = v
    return out


def simulated_script(protocol: Protocol | None, seconds_scale: float = 1.0):
    """The simulated participant: suppresses mu by 40 % for 4 s in every 8 s, with a blink
    every 15 s and a 1-s EMG burst every 30 s (to show the gates)."""
    from ..hardware.sources.simulated import SimulationScript

    total = (protocol.total_duration_s() * seconds_scale) if protocol else 600.0
    return SimulationScript.alternating(total + 60, emg_every_s=30.0, blink_every_s=15.0)


def open_source(board: str | None = None, *, board_id=None, serial_port="", mac_address="", file="", lsl_name=None,
                lsl_type=None, channel_map=None, protocol: Protocol | None = None, seconds_scale=1.0,
                realtime=True, chunk_size=None, seed=None, montage: str | None = None,
                line_freq: float | None = None, script=None, assume_uv: bool = False):
    """Open the source a user named on the command line (not started yet).

    ``board`` is a config name (``configs/*.toml`` or the user's boards folder), ``"lsl"`` or ``"file"``; ``board_id``
    alone is the escape hatch for any BrainFlow board. ``montage`` names one of the board's
    montages (default: BrainFlow's channel names); ``line_freq`` (50 or 60 Hz) overrides the
    board config's ``line_hz`` and becomes the source's ``line_hz``. ``script`` overrides what
    the simulated participant does (a :class:`~neurofeed.hardware.sources.simulated.SimulationScript`).
    """
    cmap = channel_map or {}
    if line_freq is not None:
        line_freq = check_line_freq(line_freq, "--line-freq")
    if board == "lsl" or lsl_name or lsl_type or board == "file":
        if montage:
            raise SourceError(f"--montage {montage} applies to a board config (see `neurofeed montages`); an LSL "
                              f"stream or a file names its own channels.")
    if board == "lsl" or lsl_name or lsl_type:
        from ..hardware.sources.lsl import LSLSource

        return LSLSource(name=lsl_name, stype=lsl_type or "EEG", line_hz=line_freq or 50.0, channel_map=cmap,
                         assume_uv=assume_uv)
    if board == "file":
        from ..hardware.sources.edf import FileSource

        if not file:
            raise SourceError("--board file needs --file PATH (EDF, BDF or FIF).")
        src = FileSource(file, chunk_size=chunk_size, realtime=realtime, channel_map=cmap)
        if line_freq is not None:
            src.line_hz = line_freq
        return src
    if board is None and board_id is None:
        raise SourceError("Name the board with --board: e.g. --board simulated (no headset), or --board cyton "
                          "--serial-port /dev/ttyUSB0 (see `neurofeed boards`); or --board-id N, --lsl-name NAME.")
    cfg = get_board(board) if board else BoardConfig(name=f"board-{board_id}", board_id=board_id)
    cfg = cfg.with_montage(montage).with_line_hz(line_freq)
    if cmap and cfg.fixed_placement:
        fixed = [k for k in cmap if k in cfg.montage(DEFAULT_MONTAGE)]
        if fixed:
            raise SourceError(f"--channel-map {fixed[0]}=...: on {cfg.name} the electrode {fixed[0]} is built into "
                              f"the headband at {fixed[0]} and cannot sit anywhere else; for a motor site use a "
                              f"montage with an added electrode ({', '.join(cfg.montage_names()[1:]) or 'none'}).")
    if cfg.board_id == "simulated":
        from ..hardware.sources.simulated import MuSimulator, SimulatedSource

        names = rename_channels(cfg.montage(), cmap, "board simulated")
        if seed is None:  # a different simulated participant each session; the seed is recorded
            seed = int(np.random.default_rng().integers(2 ** 31))
        sim = MuSimulator(sfreq=cfg.sfreq or 250.0, ch_names=names, seed=seed, line_hz=cfg.line_hz,
                          script=script or simulated_script(protocol, seconds_scale))
        return SimulatedSource(sim, chunk_size=chunk_size or 10, realtime=realtime, range_uv=cfg.range_uv)
    from ..hardware.sources.brainflow import BrainFlowSource

    # a named montage: the sites of the EEG rows, and rows from other_channels (the Muse AUX
    # electrode, switched on with "p50") with the commands that enable them
    eeg_names, extra_rows, commands = cfg.montage_rows()
    return BrainFlowSource(cfg, serial_port=serial_port, mac_address=mac_address, file=file,
                           board_id=board_id, channel_map=cmap, channel_names=eeg_names, extra_rows=extra_rows,
                           config_commands=commands, line_hz=cfg.line_hz)


def has_display() -> bool:
    """True where a window can be shown (an X11/Wayland display, or macOS/Windows)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def session_montage(source) -> str:
    """The montage a source was opened with: a board config's montage name (``"default"`` is
    BrainFlow's), else what names the channels (``"stream"`` for LSL, ``"file"``)."""
    cfg = getattr(source, "config", None)
    if isinstance(cfg, BoardConfig):
        return cfg.selected_montage
    return {"lsl": "stream", "file": "file"}.get(source.name.split(":")[0], DEFAULT_MONTAGE)


def build_session(source, protocol: Protocol, participant: str, out_root="recordings", seconds_scale=1.0,
                  record=True, lsl=True, marker_inlet=None, busy_poll=False, line_freq: float | None = None,
                  montage: str | None = None, yoke_from=None, blind_key=None, folder=None,
                  lsl_name: str = "neurofeed", lsl_notes: bool = False):
    """Wire source, processor, recorder and outlets into a :class:`Pipeline` (not started).

    The mains frequency notched by the chain is ``line_freq`` if given, else the source's
    ``line_hz`` (from ``--line-freq`` or the board config; protocols do not set it). The
    reference is the first of the protocol's preferences the montage supports; the session logs
    it and records ``reference_used``, ``line_freq`` and ``montage`` in header.json and the sidecar.

    Sham and blinding (:mod:`neurofeed.live.sham`): ``yoke_from`` (a recorded session folder) with a
    protocol whose ``[sham] mode = "yoked"`` shows that session's feedback to the participant;
    ``blind_key`` (a file) records the arm there and blinds the session folder (the stored
    protocol text loses its ``[sham]`` table; ``"sham": "blinded"``). ``folder`` overrides the
    session folder (a dyad's person folder); ``lsl_name`` prefixes the LSL outlets' names;
    ``lsl_notes`` streams clinician notes on the events outlet (off by default: free text).

    Returns ``(pipeline, recorder)``; ``recorder`` is None when not recording.
    """
    from ..recording.writer import check_participant_code
    from .sham import sham_setup

    check_participant_code(participant)
    yoked = sham_setup(protocol, yoke_from, blind_key, record, seconds_scale)
    montage = montage or session_montage(source)
    proc = processor_for(source, protocol, seconds_scale=seconds_scale, line_hz=line_freq)
    skipped = "; ".join(f"{r}: {why}" for r, why in proc.reference_skipped)
    log.info("reference %s on montage %s%s; mains %g Hz", proc.reference_used, montage,
             f" ({skipped})" if skipped else "", proc.line_hz)
    _carry_last_session(proc, protocol, out_root, participant)
    proc.sham_yoke = yoked
    sinks, recorder, seal_key = [], None, None
    planned = folder
    if record:
        planned = Path(folder) if folder is not None else None
        recorder, seal_key, planned = _recorder(source, proc, protocol, participant, out_root, seconds_scale,
                                                montage, yoked, blind_key, planned)
        folder = recorder.folder  # created exclusively: a suffix when another session took the name
        sinks.append(recorder)
    if lsl:
        from .lsl_outlets import LSLOutlets, session_source_id

        # the session folder's time stamp, and its collision suffix (two sessions, two source ids)
        stamp = folder.name.split("_")[0] + folder.name[len(planned.name):] if record else None
        sinks.append(LSLOutlets(protocol.signal.targets, name=lsl_name,
                                source_id=session_source_id(lsl_name, participant, stamp), notes=lsl_notes,
                                sfreq=source.sfreq))
    sealer = None
    if blind_key:  # the live values sealed, every other sink sees them masked (neurofeed.live.sham)
        from .sham import BlindedSink, Sealer

        sealer = Sealer(folder, protocol.signal.targets, seal_key)
        sinks = [sealer] + [BlindedSink(s, sealer) for s in sinks]
    if protocol.markers.mode == "external" and marker_inlet is None:
        from ..hardware.sources.lsl import MarkerInlet

        marker_inlet = MarkerInlet(protocol.markers.stream)
    pipeline = Pipeline(source, proc, sinks, marker_inlet=marker_inlet, busy_poll=busy_poll)
    pipeline.blinded = bool(blind_key)
    pipeline.sealer = sealer
    return pipeline, recorder


def _carry_last_session(proc: Processor, protocol: Protocol, out_root, participant: str) -> None:
    """``[baseline] carry = "last"``: start from the participant's last session (an input:
    journaled at sample 0, re-fed by replay)."""
    if protocol.baseline.carry != "last":
        return
    previous = last_session_carry(Path(out_root) / participant, protocol, protocol.signal.targets)
    if previous is not None:
        log.warning("carrying baseline, band and thresholds over from %s", previous["source"])
        proc.control("carry", previous)
    else:
        log.warning("carry = \"last\": no earlier session of %s with a baseline; starting afresh", participant)


def _recorder(source, proc: Processor, protocol: Protocol, participant: str, out_root, seconds_scale: float,
              montage: str, yoked, blind_key, planned: Path | None):
    """The session's recorder (its folder created, the header written), and for a blinded
    session the key to its sealed values written to ``blind_key``. Returns ``(recorder,
    seal_key or None, the folder planned before a collision suffix)``."""
    from ..recording.writer import Recorder, session_folder
    from .sham import header_sham

    planned = planned if planned is not None else session_folder(out_root, participant, protocol.name)
    text, sham = header_sham(protocol, yoked, blind_key)
    header = {"participant": participant, "protocol": protocol.name, "protocol_text": text, "sham": sham,
              "seconds_scale": seconds_scale, "sfreq": source.sfreq, "ch_names": list(source.ch_names),
              "targets": list(protocol.signal.targets), "range_uv": source.range_uv, "source": source.describe(),
              "estimator": proc.chain.estimator.describe(), "reference": proc.reference_used,
              "reference_used": proc.reference_used, "reference_preferences": as_preferences(protocol.signal.reference),
              "line_freq": proc.line_hz, "montage": montage}
    recorder = Recorder(planned, header, expected_s=protocol.total_duration_s() * seconds_scale + 60)
    seal_key = None
    if blind_key:  # the arm and the key to the session's sealed values, kept apart from the folder
        from .sham import new_seal_key, write_blind_key

        seal_key = new_seal_key()
        write_blind_key(blind_key, recorder.folder, "sham" if yoked is not None else "real", yoked, seal_key=seal_key)
    return recorder, seal_key, planned


def finish_session(pipeline: Pipeline, recorder) -> dict:
    """Close the recording (sidecar + BDF) and return the session summary."""
    summary = pipeline.processor.summary()
    summary["timing"] = pipeline.probe.summary()
    summary["dropped_samples"] = getattr(pipeline.source, "dropped_samples", 0)
    summary["source"] = pipeline.source.describe()  # as it ended: gaps, the measured rate, a rate correction
    summary["signal_lost_events"] = pipeline.lost_events
    proc = pipeline.processor
    summary["reference_used"] = proc.reference_used
    summary["line_freq"] = proc.line_hz

    # the participant's accuracy/delay curve and the designed delay in use
    summary["accuracy_curve"] = {f"{1000 * d:.0f}ms": r for d, r in pipeline.processor.accuracy_curve.items()}
    summary["effective_delay_ms"] = {f"{1000 * d:.0f}ms": {"effective_delay": 1000 * lag, "r": r}
                                     for d, (lag, r) in pipeline.processor.effective_delays.items()}
    summary["delay_s"] = pipeline.processor.chain.delay_s
    sealer = getattr(pipeline, "sealer", None)
    if sealer is not None:  # a blinded session: its live values sealed, the sidecar gets the rest
        summary = sealer.seal_summary(summary)
    if recorder is not None:
        bdf = recorder.close(summary)
        summary["recording"] = str(recorder.folder)
        summary["bdf"] = str(bdf) if bdf else None
    return summary


def _baseline_text(base) -> str:
    """The baseline power per target as words (``C3 5.02 µV², C4 0.46 µV²``), never a dict."""
    if not base:
        return "none taken"
    items = base.items() if isinstance(base, dict) else enumerate(base)
    return ", ".join(f"{t} {v:.3g} µV²" if isinstance(v, (int, float)) else f"{t} —" for t, v in items)


def _curve_from_summary(summary: dict) -> tuple[dict, dict, float]:
    """The summary's curve (keys ``"-10ms"``) back in seconds: ``(curve, effective, delay_s)`` for
    :func:`neurofeed.dsp.accuracy.curve_summary`."""
    eff = summary.get("effective_delay_ms") or {}
    curve = {float(k[:-2]) / 1000: r for k, r in summary["accuracy_curve"].items()}
    effective = {float(k[:-2]) / 1000: (v["effective_delay"] / 1000, v["r"]) for k, v in eff.items()}
    return curve, effective, float(summary.get("delay_s", float("nan")))


def print_summary(summary: dict, stream=None) -> None:
    """A short, readable end-of-session summary."""
    stream = stream or sys.stdout
    t = summary.get("timing", {})
    lag = t.get("compute_to_publish_ms", {})
    rr = summary.get("reward_rate")
    lines = ["", "Session summary",
             f"  samples: {summary.get('samples')}   feedback time: {summary.get('feedback_s', 0):.1f} s   "
             f"gated: {summary.get('gated_s', 0):.1f} s   reward rate: {'—' if rr is None else f'{100 * rr:.0f} %'}",
             f"  baseline mu power: {_baseline_text(summary.get('baseline_uv2'))}",
             f"  compute (chunk → feedback published; not the electrode-to-feedback delay) p50/p99: {lag.get('p50', float('nan')):.3f} / {lag.get('p99', float('nan')):.3f} ms",
             f"  dropped samples: {summary.get('dropped_samples', 0)}   signal-lost events: {summary.get('signal_lost_events', 0)}"]
    src = summary.get("source") or {}
    if src.get("measured_sfreq"):
        fix = src.get("rate_correction")
        lines.append(f"  stream rate on the source clock: {src['measured_sfreq']:.3f} Hz ({src['drift_pct']:+.3f} % "
                     f"from {src['nominal_sfreq']:g} Hz)" + (f"; resampled to {src['nominal_sfreq']:g} Hz from sample "
                                                            f"{fix['from_sample']}" if fix else ""))
    for b in summary.get("blocks", []):
        si = "—" if b.get("si_pooled") is None else " ".join(f"{v:+.2f}" for v in b["si_pooled"])
        rate = "—" if b["reward_rate"] is None else f"{100 * b['reward_rate']:.0f} %"
        lines.append(f"  {b['label']:<16s} {b['kind']:<13s} SI {si:>14s}  reward {rate:>5s}  gated {b['gated_s']:.1f} s")
    if summary.get("accuracy_curve"):
        lines.append("  " + curve_summary(*_curve_from_summary(summary)))
    if summary.get("carried_from"):
        lines.append(f"  carried over from: {summary['carried_from']} (its baseline and thresholds were used)")
    if summary.get("recording"):
        lines.append(f"  recording: {summary['recording']}")
    stream.write("\n".join(lines) + "\n")
