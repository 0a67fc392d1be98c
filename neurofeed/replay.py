"""Replay recorded data through the live processing code, faster than real time.

- A neurofeed session folder is replayed with its own protocol, chunk sizes and operator
  events (pause, marker, signal lost): the feedback values come out bit for bit as recorded.
- A file from another system (EDF/BDF/FIF) is replayed in live-sized chunks; its annotation
  labels become conditions (blocks driven like external markers) and ``baseline_label``
  takes that label's segments as the baseline.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from .errors import NeurofeedError
from .pipeline import Processor
from .protocol.engine import combine_si, parse_input
from .protocol.schema import PROTOCOL_DIR, Protocol, load_protocol, parse_protocol
from .recording.journal import feedback_columns, is_journal, read_journal

DEFAULT_REPLAY_PROTOCOL = PROTOCOL_DIR / "action-observation-research.toml"


def _state_row(st) -> list:
    return [st.sample_index, st.si_combined, st.threshold, float(st.reward), float(st.gated), st.feedback,
            float(st.feedback_on), *st.si, *st.power_uv2]


def _pace(t0: float, n_done: int, sfreq: float) -> None:
    wait = t0 + n_done / sfreq - time.perf_counter()
    if wait > 0:
        time.sleep(wait)


def replay_journal(path, protocol: Protocol | None = None, speed: str = "max", keep_states: bool = False) -> dict:
    """Replay a neurofeed session folder bit-exact: the same samples in the same chunks, with
    every input the engine received (operator controls, external block markers, signal lost,
    stop, carry-over; see :func:`neurofeed.protocol.engine.parse_input`) re-fed at the chunk
    boundary where it was applied live.

    Returns a dict with ``feedback`` (n_updates × columns, as ``feedback.f64``), ``recorded``
    (the journal's own rows), ``columns``, ``events``, the engine ``summary`` and, with
    ``keep_states``, ``states`` (every FeedbackState).
    """
    j = read_journal(path)
    h = j.header
    proto = protocol or parse_protocol(h["protocol_text"], f"{j.path}/header.json:protocol_text")
    proc = Processor(proto, j.sfreq, j.ch_names, h["range_uv"], h.get("seconds_scale", 1.0))
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
    if keep_states:
        out["states"] = states
    return out


def _label_per_sample(annotations, n: int, sfreq: float) -> list:
    """(start, end, label) spans in samples from (onset_s, duration_s, label) annotations."""
    spans = []
    for onset, dur, label in annotations:
        s = int(round(onset * sfreq))
        e = min(n, int(round((onset + dur) * sfreq))) if dur > 0 else s
        if e > s:
            spans.append((s, e, label))
    return spans


def replay_file(path, protocol: Protocol, baseline_label: str | None = None, speed: str = "max",
                chunk_size: int | None = None) -> dict:
    """Replay an EDF/BDF/FIF file in live-sized chunks; conditions from its annotations.

    Pass 1 runs the DSP chain chunk by chunk (as live) and keeps the mu power per sample;
    the baseline is the mean power over ``baseline_label`` segments. Pass 2 runs the engine
    over the same chunks, with blocks switched at annotation boundaries.
    """
    import copy

    from .sources.edf import FileSource

    protocol = copy.deepcopy(protocol)  # the baseline label is set below: never on the caller's object
    src = FileSource(path, chunk_size=chunk_size)
    proc = Processor(protocol, src.sfreq, src.ch_names, src.range_uv, external=True)
    n_total = src.data.shape[1]
    spans = _label_per_sample(src.annotations, n_total, src.sfreq)
    labels = sorted({lab for _, _, lab in spans})
    base = baseline_label or protocol.baseline.block
    base_spans = [(s, e) for s, e, lab in spans if lab == base]
    if not base_spans:
        raise NeurofeedError(f"{path}: no annotated segments labelled {base!r} for the baseline; pass --baseline-label "
                             f"with one of: {', '.join(labels) or '(the file has no annotations)'}.")
    base_mask = np.zeros(n_total, dtype=bool)
    for s, e in base_spans:
        base_mask[s:e] = True
    if proc.refit:  # fit the band / weighted cFIR on the baseline segments before streaming
        proc.fit_to_baseline(proc.chain.spatial(src.data)[:, base_mask])
    step = src.chunk_size
    bounds = list(range(0, n_total, step))
    power = np.zeros((len(proc.chain.targets), n_total))
    gated = np.zeros(len(bounds), dtype=bool)
    reasons = []
    t0 = time.perf_counter()
    for i, s in enumerate(bounds):  # pass 1: DSP, exactly as live
        p = proc.chain.process(src.data[:, s:s + step])
        power[:, s:s + p.shape[1]] = p
        gated[i] = proc.chain.gated
        reasons.append(proc.chain.quality.gate_reasons)
        if speed == "1":
            _pace(t0, s + p.shape[1], src.sfreq)
    eng = proc.engine
    eng.p.baseline.block = base
    # the one BaselineModel (the protocol's statistic) over every baseline chunk; this offline
    # analysis pools gated chunks into the baseline as it pools them into the conditions (live and
    # causal replay leave them out of both the baseline and the reward)
    for i, s in enumerate(bounds):
        m = base_mask[s:s + step]
        if m.any():
            eng.baseline.add(power[:, s:s + step][:, m], False)
    eng.finish_baseline()
    baseline_uv2 = eng.baseline_uv2
    # blocks switch between chunks, as markers would: at the chunk holding an annotation's onset
    onsets = np.array([s for s, _, _ in spans], dtype=np.int64)
    chunk_of = onsets // step
    starts_at = {}
    for k, c in enumerate(chunk_of):
        starts_at[int(c)] = spans[k][2]  # the last onset within a chunk wins
    rows = []
    for i, s in enumerate(bounds):  # pass 2: the engine over the same chunks
        label = starts_at.get(i)
        if label is not None:
            eng.start_block(label)
        st = eng.update(power[:, s:s + step], bool(gated[i]), reasons[i])
        rows.append(_state_row(st))
    eng.stop("end of file")
    fb = np.array(rows, dtype=np.float64)
    return {"feedback": fb, "recorded": None, "columns": feedback_columns(proc.chain.targets),
            "events": eng.drain_events(), "summary": eng.summary(), "sfreq": src.sfreq,
            "targets": proc.chain.targets, "labels": spans, "power": power, "baseline_uv2": baseline_uv2,
            "combine": protocol.signal.combine}


def condition_summary(result: dict) -> dict:
    """Per condition label: pooled SI per target and combined, number of segments, seconds."""
    if result.get("labels") is None:
        out = {}
        for b in result["summary"]["blocks"]:
            d = out.setdefault(b["label"], {"segments": 0, "si": None})
            d["segments"] += 1
            d["si"] = b["si_pooled"]
        return out
    power, base, targets = result["power"], result["baseline_uv2"], result["targets"]
    out = {}
    for label in sorted({lab for *_, lab in result["labels"]}):
        mask = np.zeros(power.shape[1], dtype=bool)
        segs = [(s, e) for s, e, lab in result["labels"] if lab == label]
        for s, e in segs:
            mask[s:e] = True
        si = np.log10(power[:, mask].mean(axis=1) / base)
        out[label] = {"segments": len(segs), "seconds": float(mask.sum() / result["sfreq"]),
                      "si": dict(zip(targets, si.tolist())),
                      "combined": combine_si(si, result["combine"])}
    return out


def write_outputs(result: dict, out_dir) -> dict:
    """``feedback.tsv`` and ``summary.json`` for one replay; returns the summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fb, cols, sfreq = result["feedback"], result["columns"], result["sfreq"]
    targets = result["targets"]
    with open(out / "feedback.tsv", "w") as f:
        f.write("\t".join(["time_s", *[f"si_{t}" for t in targets], "si_combined", "threshold", "reward", "gate",
                           "feedback"]) + "\n")
        ix = {c: i for i, c in enumerate(cols)}
        for r in fb:
            vals = [r[0] / sfreq, *[r[ix[f"si_{t}"]] for t in targets], r[ix["si_combined"]], r[ix["threshold"]],
                    int(r[ix["reward"]]), int(r[ix["gated"]]), r[ix["feedback"]]]
            f.write("\t".join("nan" if isinstance(v, float) and math.isnan(v) else (f"{v:.6g}" if isinstance(v, float) else str(v))
                              for v in vals) + "\n")
    s = result["summary"]
    summary = {"conditions": condition_summary(result), "reward_rate": s["reward_rate"], "gated_s": s["gated_s"],
               "baseline_uv2": s["baseline_uv2"], "threshold_final": s["threshold_final"],
               "updates": int(len(fb)), "duration_s": float(fb[-1, 0] / sfreq) if len(fb) else 0.0}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def replay_path(path, protocol=None, baseline_label=None, speed="max") -> dict:
    """Replay one path (session folder or file) and return the raw result."""
    if is_journal(path):
        return replay_journal(path, load_protocol(protocol) if protocol else None, speed)
    proto = load_protocol(protocol or DEFAULT_REPLAY_PROTOCOL)
    return replay_file(path, proto, baseline_label, speed)


def _one(path, protocol, baseline_label, speed, out) -> tuple[str, dict]:
    res = replay_path(path, protocol, baseline_label, speed)
    name = Path(path).name.replace(".", "_") if not is_journal(path) else Path(path).resolve().name
    return str(path), write_outputs(res, Path(out) / name)


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
    import copy

    from .feedback.display import run_windows
    from .pipeline import Pipeline
    from .sources.edf import FileSource

    if is_journal(path):
        raise NeurofeedError(f"{path}: --display plays EDF/BDF/FIF files; replay a session folder without it.")
    proto = copy.deepcopy(load_protocol(protocol or DEFAULT_REPLAY_PROTOCOL))
    src = FileSource(path, realtime=speed == "1")
    if baseline_label:
        proto.baseline.block = baseline_label
    proc = Processor(proto, src.sfreq, src.ch_names, src.range_uv, external=True)
    pipe = Pipeline(src, proc, marker_inlet=AnnotationMarkers(src, src.annotations))
    run_windows(pipe)
    return pipe.engine.summary()


def replay_many(files, protocol=None, speed="max", baseline_label=None, out="replay-out", jobs=1,
                display=False) -> dict:
    """Replay several files (in parallel with ``jobs`` > 1), with a progress line per file."""
    if display:
        if len(files) != 1:
            raise NeurofeedError("--display shows one file at a time; name a single file.")
        return {str(files[0]): replay_with_display(files[0], protocol, baseline_label, speed)}
    for f in files:
        if not Path(f).exists():
            raise NeurofeedError(f"{f}: no such file or session folder.")
    results = {}
    n = len(files)
    if jobs > 1 and n > 1:
        from joblib import Parallel, delayed

        gen = Parallel(n_jobs=jobs, return_as="generator")(
            delayed(_one)(f, protocol, baseline_label, speed, out) for f in files)
    else:
        gen = (_one(f, protocol, baseline_label, speed, out) for f in files)
    for i, (path, summary) in enumerate(gen, 1):
        results[path] = summary
        bar = "#" * int(30 * i / n)
        sys.stderr.write(f"\r[{bar:<30s}] {i}/{n} {Path(path).name}")
        sys.stderr.flush()
    sys.stderr.write("\n")
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / "summary.json").write_text(json.dumps(results, indent=1))
    for path, s in results.items():
        print(f"{path}:")
        for label, c in s["conditions"].items():
            si = c["si"]
            si_text = " ".join(f"{k} {v:+.3f}" for k, v in si.items()) if isinstance(si, dict) else str(si)
            print(f"  {label:<18s} n={c['segments']:<3d} SI {si_text}")
    return results
