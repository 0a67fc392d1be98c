"""Replay recorded data through the live processing code, faster than real time.

- A neurofeed session folder is replayed with its own protocol, chunk sizes and operator
  events (pause, marker, signal lost): the feedback values come out bit for bit as recorded.
- A file (EDF/BDF/FIF) is replayed in one of two modes:

  ``causal`` (default)
      What the live loop would have shown: the file's samples go through the same
      :class:`~neurofeed.live.processor.Processor` in live-sized chunks (0.04 s), blocks start and end
      at the annotations' samples as external markers would start them, the baseline is the
      first baseline-label block (taken and fitted at its end, as live), thresholds as live.
      A baseline with less clean signal than the protocol's ``[baseline] min_clean_s`` (after the
      estimator's settling and the gate) is refused in one line; ``--baseline-from FILE`` takes
      the baseline and the fitted chain from another recording of the same person instead.
      A neurofeed BDF is driven by its own events (``block_start/<label>/<kind>``, pauses,
      markers), so it replays what the session showed (24-bit quantisation aside).
  ``offline``
      A two-pass analysis: the DSP chain runs chunk by chunk, the estimator is fitted on, and
      the baseline pooled over, every baseline-label segment of the file (before and after the
      task), then the engine runs over the same power. Conditions compare with the whole
      file's baseline; this is not what a participant would have seen.

- A folder or a BIDS dataset is replayed file by file, in parallel (joblib, or a Dask
  distributed cluster), with a group summary (``group.json``).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import re
import sys
import time
from pathlib import Path

import numpy as np

from ..core.errors import NeurofeedError
from ..core.record import new_row, state_to_row
from ..live.processor import Processor, processor_for
from ..protocol.engine import combine_si, parse_input
from ..protocol.schema import PROTOCOL_DIR, Protocol, load_protocol, parse_protocol
from ..recording.journal import feedback_columns, is_journal, read_journal

DEFAULT_REPLAY_PROTOCOL = PROTOCOL_DIR / "action-observation-research.toml"
MODES = ("causal", "offline")
log = logging.getLogger(__name__)
CHUNK_S = 0.04  # live chunk length (10 samples at 250 Hz); chunk sizes scale with the rate
_FLOOR_UV2 = 1e-12


def _state_row(st) -> np.ndarray:
    return state_to_row(st, new_row(st.targets))


def _pace(t0: float, n_done: int, sfreq: float) -> None:
    wait = t0 + n_done / sfreq - time.perf_counter()
    if wait > 0:
        time.sleep(wait)


def replay_journal(path, protocol: Protocol | None = None, speed: str = "max", keep_states: bool = False,
                   on_step=None, unblind=None) -> dict:
    """Replay a neurofeed session folder bit-exact: the same samples in the same chunks, with
    every input the engine received (operator controls, external block markers, signal lost,
    stop, carry-over; see :func:`neurofeed.protocol.engine.parse_input`) re-fed at the chunk
    boundary where it was applied live.

    Returns a dict with ``feedback`` (n_updates × columns, as ``feedback.f64``), ``recorded``
    (the journal's own rows), ``columns``, ``events``, the engine ``summary`` and, with
    ``keep_states``, ``states`` (every FeedbackState).

    ``on_step(processor, data, timestamps, state)`` (optional) is called after each chunk's
    step, as a live pipeline's sinks are (the dyad replay feeds its coupling monitor with it).

    A blinded session (:mod:`neurofeed.live.sham`) replays blinded: the values its recording seals
    are NaN/None in ``feedback``, ``events`` and ``summary`` unless ``unblind`` names its key
    file; then ``recorded`` holds the unsealed rows the live session wrote.
    """
    j = read_journal(path)
    h = j.header
    proto = protocol or parse_protocol(h["protocol_text"], f"{j.path}/header.json:protocol_text")
    proc = processor_for(j, proto, seconds_scale=h.get("seconds_scale", 1.0), range_uv=h["range_uv"],
                         line_hz=h.get("line_freq", 50.0))  # the session's own range and mains frequency
    from ..live.sham import replay_shown  # a yoked session's shown values come from its journal

    proc.sham_yoke = replay_shown(j)
    # a session that refitted in a worker switched at a journaled sample: the replay switches there too
    proc.refit_in_worker = any(str(e.get("text", "")).startswith("refit_applied/") for e in j.events)
    eng = proc.engine
    inputs = []
    for e in j.events:
        parsed = parse_input(e["text"])
        if parsed is not None:
            inputs.append((int(e["sample"]), parsed))
    rows, states, pos, k = [], [], 0, 0

    def feed_due():
        nonlocal k
        while k < len(inputs) and inputs[k][0] <= eng.n:
            name, args = inputs[k][1]
            proc.control(name, *args)
            k += 1

    t0 = time.perf_counter()
    for n in j.chunk_sizes:
        feed_due()
        if eng.finished:
            break
        st = proc.step(j.data[:, pos:pos + n])
        rows.append(_state_row(st))
        if on_step is not None:
            on_step(proc, j.data[:, pos:pos + n], j.timestamps[pos:pos + n], st)
        if keep_states:
            states.append(st)
        pos += n
        if speed == "1":
            _pace(t0, pos, j.sfreq)
    feed_due()  # inputs after the last chunk (an operator stop)
    fb = np.array(rows, dtype=np.float64).reshape(-1, len(feedback_columns(proc.chain.targets)))
    out = {"feedback": fb, "recorded": j.feedback, "columns": feedback_columns(proc.chain.targets),
           "events": eng.drain_events(), "summary": proc.summary(), "sfreq": j.sfreq, "targets": proc.chain.targets,
           "labels": None, "power": None}
    from ..live.sham import Sealer, is_blinded, mask_rows, split_summary, unseal

    if is_blinded(h):
        if unblind:
            out["recorded"] = unseal(j.path, unblind)["rows"]
        else:  # what the recording keeps sealed stays so in its replay
            out["feedback"] = mask_rows(fb, out["columns"])
            out["events"] = Sealer.clear_events(out["events"])
            out["summary"] = split_summary(out["summary"])[0]
    if keep_states:
        out["states"] = states
    return out


# -- files -------------------------------------------------------------------------------

class RecordedFile:
    """An EEG file read for replay: data (n_channels × n_samples, µV), rate, names, range,
    annotations ``(onset_s, duration_s, text)`` and whether it is a neurofeed BDF.

    A neurofeed BDF carries the feedback values as extra signals (SI, Threshold, Reward,
    Feedback): they are dropped, and the amplifier range is the one recorded in the header
    (the live railing threshold), not the data's own maximum.
    """

    def __init__(self, path, chunk_size: int | None = None, label_map: dict | None = None,
                 line_hz: float | None = None, channel_types: dict | None = None, check_types: bool = True):
        from ..core.record import field_of
        from ..hardware.sources.edf import FileSource

        self.path = Path(path)
        self.channel_types = channel_types
        src = self._source = FileSource(self.path, chunk_size=chunk_size, channel_types=channel_types)
        self.sfreq = float(src.sfreq)
        if self.sfreq > 4096.0:  # below 100 Hz the protocol's band check names the Nyquist limit
            raise NeurofeedError(f"{self.path}: sampling rate {self.sfreq:g} Hz is above 4096 Hz, the most neurofeed "
                                 f"processes; resample the file first (e.g. MNE's raw.resample(2048)).")
        self.chunk_size = int(chunk_size or max(1, round(CHUNK_S * self.sfreq)))
        self.neurofeed = any(text.startswith("block_start/") for _, _, text in src.annotations)
        rename = {} if self.neurofeed else (label_map or {})  # a neurofeed BDF keeps its block labels
        self.annotations = [(on, dur, rename.get(text, text)) for on, dur, text in src.annotations]
        unknown = [k for k in (channel_types or {}) if k.upper() not in {n.upper() for n in src.ch_names}]
        if check_types and unknown:
            raise NeurofeedError(f"--channel-types {unknown[0]}: {self.path.name} has no such channel; it has "
                                 f"{', '.join(src.ch_names)}.")
        # EEG channels only: EOG, ECG, EMG, misc, accelerometers stay out of the average
        # reference and the gates (types from the file, a BIDS channels.tsv or --channel-types)
        keep = [i for i, n in enumerate(src.ch_names)
                if src.ch_types[i] == "eeg" and not (self.neurofeed and field_of(n) is not None)]
        if not keep:
            raise NeurofeedError(f"{self.path}: no EEG channels (types: {', '.join(sorted(set(src.ch_types)))}); "
                                 f"name them with --channel-types, e.g. {src.ch_names[0]}=eeg.")
        self.dropped = [(src.ch_names[i], src.ch_types[i]) for i in range(len(src.ch_names))
                        if src.ch_types[i] != "eeg"]
        self.ch_names = [src.ch_names[i] for i in keep]
        self.data = np.ascontiguousarray(src.data[keep]) if len(keep) < len(src.ch_names) else src.data
        self.range_uv = src.range_uv
        self.line_hz, self.line_hz_from = self._mains(src, line_hz)
        if self.neurofeed and self.path.suffix.lower() == ".bdf":
            from edfio import read_bdf

            self.range_uv = float(read_bdf(self.path).signals[0].physical_max)

    def _mains(self, src, line_hz: float | None) -> tuple[float, str]:
        """The mains frequency to notch and where it came from: a neurofeed session's header,
        else BIDS ``PowerLineFrequency``, else MNE's ``line_freq``, else ``line_hz``
        (``--line-freq``), else 50 Hz with a one-line warning naming the assumption."""
        if self.neurofeed and (self.path.parent / "header.json").exists():
            try:
                return float(json.loads((self.path.parent / "header.json").read_text())["line_freq"]), "session"
            except (OSError, ValueError, KeyError):
                pass
        if src.line_freq is not None:
            if line_hz is not None and float(line_hz) != src.line_freq:
                log.warning("%s: %s says %g Hz mains; --line-freq %g ignored", self.path, src.line_freq_from,
                            src.line_freq, line_hz)
            return src.line_freq, src.line_freq_from
        if line_hz is not None:
            return float(line_hz), "--line-freq"
        log.warning("%s: the file does not say its mains frequency; assuming 50 Hz (give --line-freq 60 for "
                    "60-Hz mains, e.g. the Americas)", self.path)
        return 50.0, "assumed"

    def playback(self, realtime: bool):
        """The file as a live source (:class:`~neurofeed.hardware.sources.edf.FileSource`) of what
        a replay processes: its EEG rows only, and the range and mains frequency this recording
        says (``replay --display`` runs it through a :class:`~neurofeed.live.pipeline.Pipeline`)."""
        src = self._source
        src.realtime = bool(realtime)
        src.data, src.ch_names, src.ch_types = self.data, list(self.ch_names), ["eeg"] * len(self.ch_names)
        src.range_uv, src.line_hz = self.range_uv, self.line_hz
        return src

    @property
    def n_samples(self) -> int:
        return int(self.data.shape[1])

    def condition_spans(self) -> list[tuple[int, int, str]]:
        """(start, end, label) in samples: annotated segments, or a neurofeed BDF's blocks."""
        n, sf = self.n_samples, self.sfreq
        spans = []
        if self.neurofeed:
            open_ = None
            for onset, _, text in self.annotations:
                s = min(n, int(round(onset * sf)))
                if text.startswith(("block_start/", "block_end/")) and open_ is not None:
                    if s > open_[0]:
                        spans.append((open_[0], s, open_[1]))
                    open_ = None
                if text.startswith("block_start/"):
                    open_ = (s, text.split("/")[1])
            if open_ is not None and n > open_[0]:
                spans.append((open_[0], n, open_[1]))
            return spans
        for onset, dur, label in self.annotations:
            if label.upper().startswith(("BAD", "EDGE")):
                continue  # MNE's marks of bad or skipped data, not conditions
            s = int(round(onset * sf))
            e = min(n, int(round((onset + dur) * sf))) if dur > 0 else s
            if e > s:
                spans.append((s, e, label))
        return spans


_OWN_ENDS = ("session_end/schedule complete", "session_end/maximum session duration reached")


def engine_inputs(rec: RecordedFile, spans) -> list[tuple[int, str, tuple]]:
    """The engine inputs a file implies, ``(sample, method, args)`` in time order.

    Annotated segments start a block at their onset and end it at their end unless another
    starts there (external-marker style). A neurofeed BDF's own events are re-fed instead:
    block starts and ends, pauses, operator markers, signal loss and operator stops (the
    outputs — rewards, gates, the baseline — are what the replay recomputes).
    """
    out = []
    if not rec.neurofeed:
        for s, e, label in spans:
            out.append((s, "start_block", (label,)))
            out.append((e, "end_block", ()))
    else:
        sf = rec.sfreq
        for onset, _, text in rec.annotations:
            s = int(round(onset * sf))
            if text.startswith("block_start/"):  # block_start/<label>/<kind>: the protocol's block of that label
                out.append((s, "start_block", (text.split("/")[1],)))
            elif text.startswith("block_end/"):
                out.append((s, "end_block", ()))
            elif text in ("pause", "resume"):
                out.append((s, "set_paused", (text == "pause",)))
            elif text in ("signal_lost", "signal_restored"):
                out.append((s, "set_signal_lost", (text == "signal_lost",)))
            elif text.startswith("marker/"):
                out.append((s, "marker", (text[len("marker/"):],)))
            elif text.startswith("session_end/") and text not in _OWN_ENDS:
                out.append((s, "stop", (text.split("/", 1)[1],)))
            elif text.startswith("refit_applied/"):  # the live switch to the worker's refit
                out.append((s, "apply_refit", ()))
    out.sort(key=lambda x: x[0])  # stable: events at one sample keep their order
    return out


def _apply_inputs(proc: Processor, inputs, k: int, pos: int, base: str) -> int:
    """Apply every input at or before sample ``pos``; returns the index of the next one."""
    eng = proc.engine
    group_end = k
    while group_end < len(inputs) and inputs[group_end][0] <= pos:
        group_end += 1
    group = inputs[k:group_end]
    starts = any(m == "start_block" for _, m, _ in group)
    for _, method, args in group:
        if method == "end_block":
            if starts or eng.block is None:
                continue  # a start at the same sample ends the running block itself
            eng.end_block()
        elif method == "start_block":
            running = eng.block.label if eng.block is not None else None
            if running == args[0] == base and eng.baseline_uv2 is None:
                continue  # consecutive baseline segments form one baseline, as one live block would
            eng.start_block(*args)
        elif method == "apply_refit":
            proc.control("apply_refit")
        else:
            getattr(eng, method)(*args)
    proc.fit_pending_baseline()
    return group_end


def _replay_causal(rec: RecordedFile, protocol: Protocol, base: str, speed: str, preset=None) -> dict:
    proc = processor_for(rec, protocol, external=True)
    eng = proc.engine
    if preset is not None:  # --baseline-from: the chain fitted on, and the baseline of, another recording
        chain, fit, source = preset
        chain.restart()  # this file is a new recording: filters seed on its first sample
        proc.chain = chain
        eng.emit(f"baseline_from/{source}")
        eng.finish_baseline(fit)  # in force from the first sample; no block of this file is the baseline
    spans = rec.condition_spans()
    inputs = engine_inputs(rec, spans)
    proc.refit_in_worker = any(m == "apply_refit" for _, m, _ in inputs)  # switch where the session did
    n_total, step = rec.n_samples, rec.chunk_size
    rows, k, pos = [], 0, 0
    t0 = time.perf_counter()
    while pos < n_total:
        k = _apply_inputs(proc, inputs, k, pos, base)
        if eng.finished:
            break
        end = min((pos // step + 1) * step, n_total)  # chunks keep a fixed grid, as a live source's
        if k < len(inputs) and inputs[k][0] < end:
            end = inputs[k][0]  # an input inside the chunk: hand the chunk over in two parts, split at it
        st = proc.step(rec.data[:, pos:end])
        if end % step == 0 or end == n_total:  # one published state per chunk, as live publishes
            rows.append(_state_row(st))
        pos = end
        if speed == "1":
            _pace(t0, pos, rec.sfreq)
    _apply_inputs(proc, inputs, k, pos, base)
    eng.stop("end of file")
    proc.fit_pending_baseline()
    return {"proc": proc, "rows": rows, "spans": spans, "power": None,
            "conditions": _block_conditions(eng, protocol.signal.combine, rec.sfreq)}


def _block_conditions(eng, combine: str, sfreq: float) -> dict:
    """Per block label: the mean SI of its blocks (the blocks' ``si_pooled``, pooled: the
    sample-weighted mean of the shown per-target SI over their clean updates; see
    :class:`~neurofeed.protocol.engine.BlockRecord`) vs the engine's baseline."""
    out = {}
    base = eng.baseline_uv2
    for label in sorted({b.label for b in eng.blocks}):
        blocks = [b for b in eng.blocks if b.label == label]
        n = sum(b.n_log for b in blocks)
        seconds = sum(max(b.end_sample, b.start_sample) - b.start_sample for b in blocks) / sfreq
        d = {"segments": len(blocks), "seconds": float(seconds), "si": None, "combined": None}
        if base is not None and n:
            si = sum(b.log_sum for b in blocks) / n - np.log10(base)
            d["si"] = dict(zip(eng.targets, si.tolist()))
            d["combined"] = combine_si(si, combine)
        out[label] = d
    return out


def _replay_offline(rec: RecordedFile, protocol: Protocol, base: str, speed: str) -> dict:
    """Two passes: DSP chunk by chunk (power per sample), then the engine over the same chunks
    with the baseline pooled over every ``base`` segment (the estimator fitted on them first)."""
    proc = processor_for(rec, protocol, external=True)
    spans = rec.condition_spans()
    n_total, step = rec.n_samples, rec.chunk_size
    base_mask = np.zeros(n_total, dtype=bool)
    for s, e, lab in spans:
        if lab == base:
            base_mask[s:e] = True
    if proc.refit:  # fit the band / weighted cFIR on the baseline segments before streaming
        proc.fit_estimator(proc.chain.spatial(rec.data)[:, base_mask])
    bounds = list(range(0, n_total, step))
    power = np.zeros((len(proc.chain.targets), n_total))
    gated = np.zeros(len(bounds), dtype=bool)
    reasons = []
    t0 = time.perf_counter()
    for i, s in enumerate(bounds):  # pass 1: DSP, exactly as live
        p = proc.chain.process(rec.data[:, s:s + step])
        power[:, s:s + p.shape[1]] = p
        gated[i] = proc.chain.gated
        reasons.append(proc.chain.quality.gate_reasons)
        if speed == "1":
            _pace(t0, s + p.shape[1], rec.sfreq)
    eng = proc.engine
    eng.protocol.baseline.block = base
    # the one BaselineModel (the protocol's statistic) over every baseline chunk; this offline
    # analysis pools gated chunks into the baseline as it pools them into the conditions (live and
    # causal replay leave them out of both the baseline and the reward). The estimator's start-up
    # at the file's start is left out of both.
    mem = proc.estimator_memory_samples()
    for i, s in enumerate(bounds):
        m = base_mask[s:s + step]
        if m.any():
            eng.baseline.add(power[:, s:s + step][:, m], False, settling=s < mem)
    eng.finish_baseline()
    baseline_uv2 = eng.baseline_uv2
    # blocks switch between chunks, as markers would: at the chunk holding an annotation's onset
    starts_at = {}
    for s, _, label in spans:
        starts_at[s // step] = label  # the last onset within a chunk wins
    rows = []
    for i, s in enumerate(bounds):  # pass 2: the engine over the same chunks
        label = starts_at.get(i)
        if label is not None:
            eng.start_block(label)
        st = eng.update(power[:, s:s + step], bool(gated[i]), reasons[i])
        rows.append(_state_row(st))
    eng.stop("end of file")
    return {"proc": proc, "rows": rows, "spans": spans, "power": power,
            "conditions": _pooled_conditions(power, baseline_uv2, spans, rec.sfreq, proc.chain.targets,
                                             protocol.signal.combine, -(-mem // step) * step)}


def _pooled_conditions(power, base, spans, sfreq, targets, combine, settle: int = 0) -> dict:
    """Per label: mean SI over all its segments vs the pooled baseline, as the live block tables
    take it (see :mod:`neurofeed.protocol.baseline`): the mean log10 power over the label's
    samples (those in chunks before ``settle``, the estimator's start-up, left out as in the
    baseline) minus log10 of the baseline. The baseline label itself reads 0 with ``mean``."""
    out = {}
    logp = np.log10(np.maximum(power, _FLOOR_UV2))
    for label in sorted({lab for *_, lab in spans}):
        mask = np.zeros(power.shape[1], dtype=bool)
        segs = [(s, e) for s, e, lab in spans if lab == label]
        for s, e in segs:
            mask[s:e] = True
        used = mask.copy()
        used[:settle] = False
        si = logp[:, used].mean(axis=1) - np.log10(base) if used.any() else np.full(power.shape[0], np.nan)
        out[label] = {"segments": len(segs), "seconds": float(mask.sum() / sfreq),
                      "si": dict(zip(targets, si.tolist())), "combined": combine_si(si, combine)}
    return out


def replay_file(path, protocol: Protocol, baseline_label: str | None = None, speed: str = "max",
                chunk_size: int | None = None, mode: str = "causal", label_map: dict | None = None,
                line_hz: float | None = None, baseline_from=None, min_baseline_s: float | None = None,
                channel_types: dict | None = None) -> dict:
    """Replay an EDF/BDF/FIF file in live-sized chunks (``mode`` ``"causal"`` or ``"offline"``).

    Parameters
    ----------
    path : str or Path
    protocol : Protocol
        Not modified (the baseline label is set on a copy).
    baseline_label : str, optional
        Annotation label (block label for a neurofeed BDF) of the baseline; default the
        protocol's baseline block.
    speed : {"max", "1"}
        As fast as possible, or paced at real time.
    chunk_size : int, optional
        Samples per chunk; default 0.04 s of samples (10 at 250 Hz, 82 at 2048 Hz).
    mode : {"causal", "offline"}
        See the module docstring.
    label_map : dict, optional
        Annotation label → condition name (e.g. ``{"T2": "feet"}``), applied before anything
        else (``baseline_label`` names a condition after renaming).
    line_hz : float, optional
        Mains frequency (50 or 60 Hz, ``--line-freq``) for a file that does not declare its own:
        a neurofeed BDF's session header, BIDS ``PowerLineFrequency`` and MNE's ``line_freq``
        come first; without any, 50 Hz with a one-line warning (:meth:`RecordedFile._mains`).
    channel_types : dict, optional
        Channel name -> type (``--channel-types EOG1=eog``) over the file's own; only EEG
        channels are replayed (the average reference and the gates see no EOG/ECG/EMG/misc).
    baseline_from : str or Path, optional
        Another recording of the same person (same montage and rate) whose ``baseline_label``
        segments give the baseline and the fitted chain (see :func:`_baseline_from`); causal
        mode only. No segment of ``path`` is then the baseline.
    min_baseline_s : float, optional
        Least clean baseline (s) a causal replay accepts; default the protocol's
        ``[baseline] min_clean_s``.

    Raises
    ------
    NeurofeedError
        A causal replay whose first baseline segment holds less clean signal than the minimum
        (one line: the file, the label, seconds found and needed, and what to do).

    Returns
    -------
    dict
        ``feedback`` (n_updates × columns, as ``feedback.f64``), ``columns``, ``events``,
        ``summary`` (the engine's), ``conditions`` (per label: ``si`` per target, ``combined``,
        ``segments``, ``seconds``), ``mode``, ``sfreq``, ``targets``, ``labels`` (segments as
        ``(start, end, label)`` samples), ``power`` (per sample, offline mode only),
        ``baseline_uv2``, ``baseline_clean_s`` (seconds of clean baseline signal: gate open,
        estimator settled), ``baseline_from``, ``process_s`` (wall-clock seconds of the
        replay, reading excluded), ``line_freq`` (Hz notched) with ``line_freq_from`` (where it
        came from) and ``channels_left_out`` (the non-EEG channels, not replayed).
    """
    if mode not in MODES:
        raise NeurofeedError(f"replay mode {mode!r} is not one of {', '.join(MODES)}.")
    protocol = copy.deepcopy(protocol)  # the baseline label is set below: never on the caller's object
    rec = RecordedFile(path, chunk_size, label_map, line_hz=line_hz, channel_types=channel_types)
    base = _baseline_label(path, rec, protocol, baseline_label)
    protocol.baseline.block = base
    preset = None
    if baseline_from is not None:
        if mode != "causal":
            raise NeurofeedError(f"--baseline-from {baseline_from}: with --mode offline the baseline is pooled over "
                                 f"{path}'s own {base!r} segments; use one or the other.")
        preset = _baseline_from(baseline_from, rec, protocol, base, label_map)
    t0 = time.perf_counter()
    out = _replay_causal(rec, protocol, base, speed, preset) if mode == "causal" else \
        _replay_offline(rec, protocol, base, speed)
    process_s = time.perf_counter() - t0
    fit = out["proc"].engine.baseline_fit
    need = protocol.baseline.min_clean_s if min_baseline_s is None else float(min_baseline_s)
    # a neurofeed BDF replays what its session showed (its baseline was the session's); an EDF's
    # first baseline segment is only what a live session would have had, and may be far too short
    if mode == "causal" and preset is None and not rec.neurofeed and (fit is None or fit.clean_s < need):
        _refuse_short_baseline(path, base, fit, need)
    return _file_result(path, rec, out, protocol, mode, base, process_s, baseline_from)


def _baseline_label(path, rec: RecordedFile, protocol: Protocol, baseline_label: str | None) -> str:
    """The label of the baseline segments (``baseline_label``, else the protocol's baseline
    block), or a one-line error naming the labels the file has."""
    base = baseline_label or protocol.baseline.block
    labels = sorted({lab for *_, lab in rec.condition_spans()})
    if base not in labels:
        what = "blocks" if rec.neurofeed else "annotated segments"
        raise NeurofeedError(f"{path}: no {what} labelled {base!r} for the baseline; pass --baseline-label "
                             f"with one of: {', '.join(labels) or '(the file has no annotations)'}.")
    return base


def _refuse_short_baseline(path, base: str, fit, need: float) -> None:
    """The one-line error of a causal replay whose first baseline segment is too short."""
    found = 0.0 if fit is None else fit.clean_s
    raise NeurofeedError(
        f"{path}: the baseline {base!r} (its first segment, taken causally as live) holds {found:.1f} s of clean "
        f"signal (after the estimator's settling and the artifact gate), less than the {need:g} s needed "
        f"([baseline] min_clean_s); pool every {base!r} segment with --mode offline, or take the baseline from "
        f"another recording of the same person with --baseline-from FILE.")


def _file_result(path, rec: RecordedFile, out: dict, protocol: Protocol, mode: str, base: str, process_s: float,
                 baseline_from) -> dict:
    """:func:`replay_file`'s result from one mode's run ``out`` (see its Returns)."""
    proc = out["proc"]
    eng = proc.engine
    fit = eng.baseline_fit
    targets = list(proc.chain.targets)
    fb = np.array(out["rows"], dtype=np.float64).reshape(-1, len(feedback_columns(targets)))
    return {"feedback": fb, "recorded": None, "columns": feedback_columns(targets), "events": eng.drain_events(),
            "summary": eng.summary(), "sfreq": rec.sfreq, "targets": targets, "labels": out["spans"],
            "power": out["power"], "conditions": out["conditions"], "mode": mode, "baseline_label": base,
            "baseline_uv2": eng.baseline_uv2, "combine": protocol.signal.combine, "source": str(path),
            "neurofeed_bdf": rec.neurofeed, "process_s": process_s, "data_s": rec.n_samples / rec.sfreq,
            "baseline_clean_s": None if fit is None else fit.clean_s,
            "baseline_from": None if baseline_from is None else str(baseline_from),
            "line_freq": proc.line_hz, "line_freq_from": rec.line_hz_from,
            "channels_left_out": [f"{n} ({t})" for n, t in rec.dropped]}


def _baseline_from(path, rec: RecordedFile, protocol: Protocol, base: str, label_map):
    """The chain and baseline of another recording of the same person (``--baseline-from``):
    that file replayed offline (the estimator fitted on, and the baseline pooled over, every
    ``base`` segment), as ``(chain, BaselineFit, path)``. Its montage and rate must be this file's."""
    other = RecordedFile(path, rec.chunk_size, label_map, line_hz=rec.line_hz, channel_types=rec.channel_types,
                         check_types=False)
    if other.sfreq != rec.sfreq or other.ch_names != rec.ch_names:
        raise NeurofeedError(f"--baseline-from {path}: {other.sfreq:g} Hz, {len(other.ch_names)} channels; "
                             f"{rec.path} has {rec.sfreq:g} Hz, {len(rec.ch_names)} channels: the baseline must "
                             f"come from a recording with the same montage and rate.")
    labels = sorted({lab for *_, lab in other.condition_spans()})
    if base not in labels:
        raise NeurofeedError(f"--baseline-from {path}: no segments labelled {base!r} for the baseline; "
                             f"it has: {', '.join(labels) or '(no annotations)'}.")
    other.line_hz = rec.line_hz
    res = _replay_offline(other, protocol, base, "max")
    fit = res["proc"].engine.baseline_fit
    need = protocol.baseline.min_clean_s
    if fit.clean_s < need:
        raise NeurofeedError(f"--baseline-from {path}: its {base!r} segments hold {fit.clean_s:.1f} s of clean signal, "
                             f"less than the {need:g} s needed ([baseline] min_clean_s); take a longer rest recording.")
    return res["proc"].chain, fit, str(path)


def condition_summary(result: dict) -> dict:
    """Per condition label: SI per target and combined, number of segments, seconds."""
    if result.get("conditions") is not None:
        return result["conditions"]
    out = {}  # a session journal: its blocks as the engine ran them
    for b in result["summary"]["blocks"]:
        d = out.setdefault(b["label"], {"segments": 0, "si": None, "combined": None})
        d["segments"] += 1
        if b["si_pooled"] is not None:
            d["si"] = dict(zip(result["targets"], b["si_pooled"]))
            d["combined"] = combine_si(np.array(b["si_pooled"]), result.get("combine", "mean"))
    return out


# -- outputs -----------------------------------------------------------------------------

def write_feedback_tsv(path, feedback: np.ndarray, columns, sfreq: float, targets) -> None:
    """``feedback.tsv``: one row per update (time_s, SI per target, combined SI, threshold,
    reward, gate, feedback, mu power per target in µV²).

    The one place replay writes per-update values. With the shared feedback record
    (neurofeed/core/record.py, on main) its body becomes one line:
    ``Path(path).write_text(record_table(feedback, columns, sfreq))`` (reports read columns by
    name: ``time_s``, ``si_combined``, ``threshold``, ``power_<target>_uv2``).
    """
    names = ["time_s", *[f"si_{t}" for t in targets], "si_combined", "threshold", "reward", "gate", "feedback",
             *[f"power_{t}_uv2" for t in targets]]
    ix = {c: i for i, c in enumerate(columns)}
    src = [None, *[ix[f"si_{t}"] for t in targets], ix["si_combined"], ix["threshold"], ix["reward"], ix["gated"],
           ix["feedback"], *[ix[f"power_{t}_uv2"] for t in targets]]
    ints = {names.index("reward"), names.index("gate")}

    def fmt(i, v):
        if i in ints:
            return str(int(v))
        return "nan" if math.isnan(v) else f"{v:.6g}"

    with open(path, "w") as f:
        f.write("\t".join(names) + "\n")
        for r in feedback:
            vals = [r[0] / sfreq, *[r[c] for c in src[1:]]]
            f.write("\t".join(fmt(i, float(v)) for i, v in enumerate(vals)) + "\n")


def write_outputs(result: dict, out_dir) -> dict:
    """``feedback.tsv`` and ``summary.json`` for one replay; returns the summary.

    ``summary.json`` holds ``mode``, ``conditions.<label>.si.<target>``,
    ``conditions.<label>.combined``, the baseline, the condition ``events`` (onset in s and
    label, for event-locked reports), the ``source`` it replayed and, for a dataset replay, its
    ``subject``, ``run``, ``session`` and ``tasks`` (label -> what the label means in this run,
    where known: :func:`tasks_of`).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fb, sfreq, targets = result["feedback"], result["sfreq"], result["targets"]
    write_feedback_tsv(out / "feedback.tsv", fb, result["columns"], sfreq, targets)
    s = result["summary"]
    events = [{"onset_s": s0 / sfreq, "duration_s": (e - s0) / sfreq, "label": lab}
              for s0, e, lab in (result.get("labels") or [])]
    if result.get("labels") is None:  # a session journal: its blocks
        events = [{"onset_s": b["start_s"], "duration_s": b["end_s"] - b["start_s"], "label": b["label"]}
                  for b in s["blocks"]]
    summary = {"mode": result.get("mode", "journal"), "source": str(result.get("source", "")),
               "sfreq": sfreq, "targets": list(targets), "baseline_label": result.get("baseline_label"),
               "conditions": condition_summary(result), "reward_rate": s["reward_rate"], "gated_s": s["gated_s"],
               "baseline_uv2": s["baseline_uv2"], "baseline_statistic": s.get("baseline_statistic"),
               "baseline_clean_s": s.get("baseline_clean_s"), "baseline_from": result.get("baseline_from"),
               "baseline_mean_power_uv2": s.get("baseline_mean_power_uv2"), "threshold_final": s["threshold_final"],
               "updates": int(len(fb)), "duration_s": float(fb[-1, 0] / sfreq) if len(fb) else 0.0,
               "line_freq": result.get("line_freq"), "line_freq_from": result.get("line_freq_from"),
               "channels_left_out": result.get("channels_left_out", []),
               "subject": result.get("subject"), "run": result.get("run"), "session": result.get("session"),
               "tasks": result.get("tasks") or {}, "events": events}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def replay_path(path, protocol=None, baseline_label=None, speed="max", mode="causal", label_map=None,
                line_hz=None, baseline_from=None, min_baseline_s=None, channel_types=None) -> dict:
    """Replay one path (session folder or file) and return the raw result.

    A session folder replays its journal (bit-exact); a file replays in ``mode``, with
    ``protocol``, else (a session's own BDF) the session's protocol, else the default.
    """
    p = Path(path)
    if p.is_dir() and is_journal(p):
        res = replay_journal(path, load_protocol(protocol) if protocol else None, speed)
        res.setdefault("source", str(path))
        res["mode"] = "journal"
        return res
    if protocol is None and is_journal(p):  # a BDF inside its session folder: the session's protocol
        header = read_journal_header(p.parent)
        proto = parse_protocol(header["protocol_text"], f"{p.parent}/header.json:protocol_text")
        return replay_file(path, proto, baseline_label, speed, mode=mode, label_map=label_map, line_hz=line_hz,
                           baseline_from=baseline_from, min_baseline_s=min_baseline_s, channel_types=channel_types)
    proto = load_protocol(protocol or DEFAULT_REPLAY_PROTOCOL)
    return replay_file(path, proto, baseline_label, speed, mode=mode, label_map=label_map, line_hz=line_hz,
                       baseline_from=baseline_from, min_baseline_s=min_baseline_s, channel_types=channel_types)


def read_journal_header(folder) -> dict:
    """A session folder's ``header.json`` (protocol text, rate, channels) without its data."""
    try:
        return json.loads((Path(folder) / "header.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise NeurofeedError(f"{folder}/header.json: unreadable ({err}).") from None


def _one(path, subject, name, protocol, baseline_label, speed, out, mode, label_map=None,
         line_hz=None, baseline_from=None, min_baseline_s=None, channel_types=None) -> tuple[str, str, dict]:
    """Replay one recording into ``out/name`` (runs in a worker: joblib or a Dask worker)."""
    res = replay_path(path, protocol, baseline_label, speed, mode, label_map, line_hz, baseline_from, min_baseline_s,
                      channel_types)
    res.update(subject=subject, run=run_of(path), session=session_of(path),
               tasks=tasks_of(path, label_map, [lab for *_, lab in (res.get("labels") or [])]))
    summary = write_outputs(res, Path(out) / name)
    summary["realtime_factor"] = res.get("data_s", 0.0) / res["process_s"] if res.get("process_s") else None
    return str(path), subject, summary


# -- datasets ----------------------------------------------------------------------------

EEG_SUFFIXES = (".edf", ".bdf", ".fif", ".fif.gz")


def _subject_of(path: Path, root: Path) -> str:
    """A subject for a file of a plain folder: its first sub-folder under ``root`` if any, else
    the file name without a trailing run number (``S001R03`` → ``S001``, ``P01_run-2`` → ``P01``)."""
    rel = path.relative_to(root)
    if len(rel.parts) > 1:
        return rel.parts[0]
    stem = path.name.split(".")[0]
    m = re.match(r"^(.+?)[_-]?(?:R|run-?)\d+$", stem, flags=re.IGNORECASE)
    return m.group(1) if m else stem


def find_recordings(path) -> list[tuple[Path, str]]:
    """The recordings under ``path`` as ``(path, subject)``, sorted.

    ``path`` may be one file or session folder, a BIDS root (``dataset_description.json``;
    EEG files found with mne-bids, the subject from the BIDS entity) or a plain folder (EEG
    files and neurofeed session folders anywhere below; a session's own BDF is not counted
    twice).
    """
    p = Path(path)
    if not p.exists():
        raise NeurofeedError(f"{p}: no such file or session folder.")
    if p.is_dir() and is_journal(p):
        return [(p, str(read_journal_header(p).get("participant", p.parent.name)))]
    if p.is_file():
        return [(p, _subject_of(p, p.parent))]
    if (p / "dataset_description.json").exists():
        from mne_bids import find_matching_paths

        found = find_matching_paths(p, datatypes="eeg", suffixes="eeg",
                                    extensions=[".edf", ".bdf", ".fif"])
        out = sorted((Path(bp.fpath), str(bp.subject)) for bp in found)
        if not out:
            raise NeurofeedError(f"{p}: a BIDS dataset without EDF/BDF/FIF EEG recordings.")
        return out
    out, sessions = [], set()
    for d in sorted(p.rglob("*")):
        if d.is_dir() and is_journal(d):
            sessions.add(d)
            out.append((d, str(read_journal_header(d).get("participant", d.parent.name))))
    for f in sorted(p.rglob("*")):
        if f.is_file() and f.name.lower().endswith(EEG_SUFFIXES) and f.parent not in sessions:
            out.append((f, _subject_of(f, p)))
    if not out:
        raise NeurofeedError(f"{p}: no EDF/BDF/FIF files or neurofeed session folders inside.")
    return sorted(out)


def _mean_ci(values) -> tuple[float | None, list | None]:
    """Mean and 95 % t-interval of the finite values (interval None with fewer than two)."""
    from scipy import stats

    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if v.size == 0:
        return None, None
    m = float(v.mean())
    if v.size < 2:
        return m, None
    h = float(stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size))
    return m, [m - h, m + h]


def group_summary(results: list[tuple[str, str, dict]]) -> dict:
    """Per subject (mean over its recordings) and group (mean over subjects) SI per condition.

    Parameters
    ----------
    results : list of (path, subject, summary)

    Returns
    -------
    dict
        ``subjects.<subject>.<condition>``: ``combined`` and ``si.<target>`` (mean over the
        subject's recordings), ``ci95`` of the combined SI over recordings, ``n_recordings``;
        ``group.<condition>``: the same over subjects (``n_subjects``; ``ci95`` is None with
        one subject). SI is log10(power / baseline), dimensionless. A condition is a label
        pooled across recordings, or ``<run>/<label>`` where the label means different tasks in
        different runs (:func:`condition_keys`; ``kept_apart`` says which and why).
    """
    by_sub: dict = {}
    results = sorted(results)
    keys, notes = condition_keys([s for _, _, s in results])
    for (path, subject, s), key in zip(results, keys):
        for label, c in s["conditions"].items():
            by_sub.setdefault(subject, {}).setdefault(key.get(label, label), []).append(c)
    subjects = {}
    for sub, conds in sorted(by_sub.items()):
        subjects[sub] = {}
        for label, cs in sorted(conds.items()):
            targets = sorted({t for c in cs for t in (c["si"] or {})})
            m, ci = _mean_ci([c["combined"] for c in cs])
            subjects[sub][label] = {"n_recordings": len(cs), "combined": m, "ci95": ci,
                                    "si": {t: _mean_ci([(c["si"] or {}).get(t) for c in cs])[0] for t in targets}}
    group = {}
    for label in sorted({lab for conds in subjects.values() for lab in conds}):
        rows = [conds[label] for conds in subjects.values() if label in conds]
        targets = sorted({t for r in rows for t in r["si"]})
        m, ci = _mean_ci([r["combined"] for r in rows])
        group[label] = {"n_subjects": len(rows), "combined": m, "ci95": ci,
                        "si": {t: dict(zip(("mean", "ci95"), _mean_ci([r["si"].get(t) for r in rows])))
                               for t in targets}}
    return {"units": "SI = mean log10 mu power - log10 baseline (the baseline's mean log10 power)",
            "n_recordings": len(results), "kept_apart": notes,
            "subjects": subjects, "group": group}


TLS_FLAGS = {"ca_file": "--tls-ca-file", "cert": "--tls-cert", "key": "--tls-key"}


def scheduler_security(scheduler: str, tls: dict | None):
    """The ``distributed.Security`` to reach ``scheduler`` with (None for ``tcp://``).

    ``tls://`` needs the certificates as files (``tls``: ``ca_file``, ``cert``, ``key``; the
    ``--tls-ca-file``, ``--tls-cert``, ``--tls-key`` options) and requires encryption; Dask sends
    pickles, so a scheduler reached over plain ``tcp://`` can run code on this machine: that is for
    trusted networks only. Raises a one-line :class:`NeurofeedError` for a missing file, a
    certificate given with ``tcp://``, or an unknown scheme.
    """
    tls = {k: v for k, v in (tls or {}).items() if v}
    scheme = scheduler.split("://", 1)[0] if "://" in scheduler else ""
    if scheme not in ("tcp", "tls"):
        raise NeurofeedError(f"--scheduler {scheduler}: give tls://HOST:PORT (with --tls-ca-file, --tls-cert, "
                             f"--tls-key) or, on a trusted network only, tcp://HOST:PORT.")
    if scheme == "tcp":
        if tls:
            raise NeurofeedError(f"{TLS_FLAGS[next(iter(tls))]} applies to a tls:// scheduler; --scheduler "
                                 f"{scheduler} is plain tcp:// (use tls://{scheduler.split('://', 1)[1]}).")
        return None
    missing = [flag for k, flag in TLS_FLAGS.items() if k not in tls]
    if missing:
        raise NeurofeedError(f"--scheduler {scheduler}: tls:// needs {', '.join(missing)} (PEM files: the "
                             f"cluster's CA certificate, this client's certificate and its key).")
    for k, f in tls.items():
        if not Path(f).is_file():
            raise NeurofeedError(f"{TLS_FLAGS[k]} {f}: no such file (a PEM file).")
    from distributed import Security

    return Security(tls_ca_file=str(tls["ca_file"]), tls_client_cert=str(tls["cert"]),
                    tls_client_key=str(tls["key"]), require_encryption=True)


def _run_parallel(calls: list, jobs: int, scheduler: str | None, tls: dict | None = None):
    """Yield the results of joblib ``delayed`` calls in order: sequentially, on ``jobs`` local
    processes, or on a Dask distributed cluster at ``scheduler`` (joblib's Dask backend;
    ``tls``: certificate files for a ``tls://`` scheduler, :func:`scheduler_security`)."""
    from joblib import Parallel, parallel_config

    if scheduler:
        try:
            from distributed import Client
        except ImportError:  # dask and distributed are the optional [cluster] extra
            raise NeurofeedError("--scheduler needs the cluster extra (dask, distributed): "
                                 "pip install 'neurofeed[cluster]'.") from None
        security = scheduler_security(scheduler, tls)
        try:
            client = Client(scheduler, timeout="20s", security=security)
        except (OSError, TimeoutError, ValueError) as err:
            raise NeurofeedError(f"--scheduler {scheduler}: cannot connect to a Dask scheduler there ({err}); "
                                 f"start one with `dask scheduler` or give its tls://HOST:PORT.") from None
        with client, parallel_config(backend="dask"):
            yield from Parallel(return_as="generator")(calls)
        return
    if jobs > 1 and len(calls) > 1:
        yield from Parallel(n_jobs=jobs, return_as="generator")(calls)
    else:
        for fn, args, kwargs in calls:
            yield fn(*args, **kwargs)


def read_label_map(path) -> dict:
    """A label map file, JSON or TOML (by its suffix): file-name pattern or run -> {annotation
    label: condition name}, e.g. ``{"S*R0[37].edf": {"T1": "left-fist", "T2": "right-fist"},
    "R05": {"T1": "fists", "T2": "feet"}}`` or in TOML ``[R05]`` / ``T1 = "fists"``. The first key
    that matches a file (its name by fnmatch, or its run, :func:`run_of`) applies to it."""
    p = Path(path)
    try:
        if p.suffix.lower() == ".toml":
            import tomllib

            m = tomllib.loads(p.read_text())
        else:
            m = json.loads(p.read_text())
    except (OSError, ValueError) as err:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        kind = "TOML" if p.suffix.lower() == ".toml" else "JSON"
        raise NeurofeedError(f"--label-map {p}: cannot read it as {kind} ({err}).") from None
    if not isinstance(m, dict) or not all(isinstance(v, dict) and all(isinstance(a, str) and isinstance(b, str)
                                                                        for a, b in v.items()) for v in m.values()):
        raise NeurofeedError(f"--label-map {p}: expected {{\"FILE PATTERN or RUN\": {{\"LABEL\": \"CONDITION\"}}}}, "
                             f"e.g. {{\"*R05.edf\": {{\"T2\": \"feet\"}}}}.")
    return m


def labels_for(path, label_map: dict | None) -> dict | None:
    """The renaming that applies to ``path``: the first key of ``label_map`` matching its name
    (fnmatch) or naming its run (``R05``, :func:`run_of`)."""
    from fnmatch import fnmatch

    name, run = Path(path).name, run_of(path)
    for pattern, mapping in (label_map or {}).items():
        if fnmatch(name, pattern) or pattern.upper() == run.upper():
            return mapping
    return None


#: what T0/T1/T2 mean in each run of the EEG Motor Movement/Imagery dataset (EEGMMIDB, PhysioNet;
#: Schalk et al. 2004): the files do not say (their annotations are T0/T1/T2 only), the dataset's
#: description does. Applies to files named like the dataset's (S001R03.edf) whose labels are these.
EEGMMIDB_TASKS = {
    **{r: {"T0": "rest", "T1": "left fist", "T2": "right fist"} for r in (3, 7, 11)},
    **{r: {"T0": "rest", "T1": "imagined left fist", "T2": "imagined right fist"} for r in (4, 8, 12)},
    **{r: {"T0": "rest", "T1": "both fists", "T2": "both feet"} for r in (5, 9, 13)},
    **{r: {"T0": "rest", "T1": "imagined both fists", "T2": "imagined both feet"} for r in (6, 10, 14)},
    1: {"T0": "rest"}, 2: {"T0": "rest, eyes closed"},  # the task runs' rest is eyes open, as R01
}
_EEGMMIDB_NAME = re.compile(r"^S\d{3}R(\d{2})\.edf$", flags=re.IGNORECASE)


def run_of(path) -> str:
    """A recording's run, for labels kept apart per run: ``R03`` for EEGMMIDB's ``S001R03.edf``,
    the BIDS ``run-2`` entity, a trailing ``R3``/``run-3`` of the name, else the name itself
    (a session folder's name)."""
    p = Path(path)
    m = _EEGMMIDB_NAME.match(p.name)
    if m:
        return f"R{int(m.group(1)):02d}"
    stem = p.name.split(".")[0]
    m = re.search(r"(?:^|_)(run-[0-9A-Za-z]+)(?:_|$)", stem)
    if m:
        return m.group(1)
    m = re.search(r"[_-]?((?:R|run-?)\d+)$", stem, flags=re.IGNORECASE)
    return m.group(1) if m else stem


def session_of(path) -> str:
    """A recording's session: the BIDS ``ses-`` entity of its name or folders, else ``n/a``."""
    for part in reversed(Path(path).parts):
        m = re.search(r"(?:^|_)ses-([0-9A-Za-z]+)", part)
        if m:
            return m.group(1)
    return "n/a"


def tasks_of(path, label_map: dict | None, labels) -> dict:
    """What each condition label of a recording means (label -> task), where known: a label the
    label map renamed means its new name (the map's author named the task); an EEGMMIDB run's
    T0/T1/T2 mean what the dataset's description says (:data:`EEGMMIDB_TASKS`). Labels of
    unknown meaning are left out."""
    mapping = label_map or {}
    out = {new: new for new in mapping.values() if new in set(labels)}
    m = _EEGMMIDB_NAME.match(Path(path).name)
    table = EEGMMIDB_TASKS.get(int(m.group(1)), {}) if m else {}
    for label in labels:
        if label not in out and label not in mapping.values() and label in table:
            out[label] = table[label]
    return out


def condition_keys(summaries: list[dict]) -> tuple[list[dict], list[str]]:
    """The condition each recording's labels pool into across a dataset.

    A label pools across recordings (key: the label) unless it means different tasks in
    different recordings (``summary["tasks"]``, :func:`tasks_of`): EEGMMIDB's T1 is the left fist
    in R03 and both fists in R05. Such a label is kept apart per run (key ``R03/T1``), and one
    line says so.

    Parameters
    ----------
    summaries : list of dict
        Each recording's ``summary.json`` (``conditions``, ``run``, ``tasks``).

    Returns
    -------
    keys : list of dict
        Per summary, label -> condition key.
    notes : list of str
        One sentence per label kept apart.
    """
    meanings: dict = {}
    for s in summaries:
        for label in s.get("conditions") or {}:
            task = (s.get("tasks") or {}).get(label)
            if task is not None:
                meanings.setdefault(label, {}).setdefault(task, []).append(str(s.get("run")))
    split = {label for label, tasks in meanings.items() if len(tasks) > 1}
    keys = [{label: f"{s.get('run')}/{label}" if label in split else label for label in s.get("conditions") or {}}
            for s in summaries]
    notes = []
    for label in sorted(split):
        said = "; ".join(f"{', '.join(sorted(set(runs)))}: {task}" for task, runs in sorted(meanings[label].items(),
                                                                                               key=lambda kv: kv[1]))
        notes.append(f"label {label} means different tasks in different runs ({said}): kept apart per run "
                     f"(e.g. {sorted(meanings[label].values())[0][0]}/{label}); a --label-map FILE names the "
                     f"conditions that pool")
    return keys, notes


def replay_many(files, protocol=None, speed="max", baseline_label=None, out="replay-out", jobs=1,
                display=False, mode="causal", scheduler=None, label_map: dict | None = None,
                line_hz: float | None = None, baseline_from=None, min_baseline_s: float | None = None,
                tls: dict | None = None, channel_types: dict | None = None) -> dict:
    """Replay files, session folders, folders of them or BIDS datasets.

    Each recording goes to ``out/<name>/`` (``feedback.tsv``, ``summary.json``); ``out``
    gets ``summary.json`` (every recording's summary by path) and ``group.json``
    (:func:`group_summary`). ``jobs`` > 1 replays in local processes; ``scheduler`` (a Dask
    scheduler address) on a distributed cluster whose workers see the same file system
    (``tls://`` with ``tls`` certificate files, :func:`scheduler_security`; ``tcp://`` on a
    trusted network only). A progress bar (tqdm) runs on stderr. ``label_map`` (:func:`read_label_map`) renames
    annotation labels per file, so that a condition means one thing across a dataset; a label that
    means different tasks in different runs is kept apart per run, with a one-line warning
    (:func:`condition_keys`).
    """
    from joblib import delayed
    from tqdm import tqdm

    if mode not in MODES:
        raise NeurofeedError(f"--mode {mode!r} is not one of {', '.join(MODES)}.")
    if display:
        if len(files) != 1:
            raise NeurofeedError("--display shows one file at a time; name a single file.")
        return {str(files[0]): replay_with_display(files[0], protocol, baseline_label, speed)}
    found = [r for f in files for r in find_recordings(f)]
    names, calls = set(), []
    for path, subject in found:
        name = path.resolve().name if path.is_dir() else path.name.replace(".", "_")
        if name in names:
            name = f"{subject}_{name}"
        names.add(name)
        calls.append(delayed(_one)(str(path), subject, name, str(protocol) if protocol else None, baseline_label,
                                   speed, str(out), mode, labels_for(path, label_map), line_hz,
                                   None if baseline_from is None else str(baseline_from), min_baseline_s,
                                   channel_types))
    results = []
    with tqdm(total=len(calls), desc="replay", unit="file", file=sys.stderr, disable=None) as bar:  # TTY only
        for item in _run_parallel(calls, jobs, scheduler, tls):
            results.append(item)
            bar.set_postfix_str(Path(item[0]).name)
            bar.update(1)
    Path(out).mkdir(parents=True, exist_ok=True)
    summaries = {path: s for path, _, s in results}
    (Path(out) / "summary.json").write_text(json.dumps(summaries, indent=1))
    group = group_summary(results)
    (Path(out) / "group.json").write_text(json.dumps(group, indent=1))
    for note in group["kept_apart"]:
        log.warning("%s", note)
    for path, s in summaries.items():
        print(f"{path} ({s['mode']}):")
        tasks = s.get("tasks") or {}
        for label, c in s["conditions"].items():
            si = c["si"]
            si_text = " ".join(f"{k} {v:+.3f}" for k, v in si.items()) if isinstance(si, dict) else "—"
            name = f"{label} ({tasks[label]})" if tasks.get(label, label) != label else label
            print(f"  {name:<26s} n={c['segments']:<3d} SI {si_text}")
    return summaries


class AnnotationMarkers:
    """Hands a file's annotation labels to the pipeline as markers when playback reaches them
    (the external-marker mode, fed by the file instead of stimulus software)."""

    def __init__(self, source, annotations):
        self.source = source
        self.pending = sorted((int(round(on * source.sfreq)), label) for on, _, label in annotations)

    def pull(self) -> list[str]:
        out = []
        while self.pending and self.pending[0][0] <= self.source._pos:
            out.append(self.pending.pop(0)[1])
        return out


def replay_with_display(path, protocol=None, baseline_label=None, speed="1") -> dict:
    """Watch a file in the participant view and console, as a live session would run it.

    Blocks follow the annotations as they are reached; the baseline is the first segment with
    ``baseline_label`` (causal, as live; the offline replay pools all of them).
    """
    from ..ui.display import run_windows

    pipe = display_pipeline(path, protocol, baseline_label, speed)
    run_windows(pipe)
    return pipe.engine.summary()


def display_pipeline(path, protocol=None, baseline_label=None, speed="1"):
    """The :class:`~neurofeed.live.pipeline.Pipeline` ``replay --display`` runs (not started): the
    file's EEG rows, with its recorded range and mains frequency (:class:`RecordedFile`, as every
    replay reads them), blocks started by its annotations."""
    from ..live.pipeline import Pipeline

    if is_journal(path):
        raise NeurofeedError(f"{path}: --display plays EDF/BDF/FIF files; replay a session folder without it.")
    proto = copy.deepcopy(load_protocol(protocol or DEFAULT_REPLAY_PROTOCOL))
    rec = RecordedFile(path)
    src = rec.playback(realtime=speed == "1")
    if baseline_label:
        proto.baseline.block = baseline_label
    proc = processor_for(src, proto, external=True)
    return Pipeline(src, proc, marker_inlet=AnnotationMarkers(src, rec.annotations))
