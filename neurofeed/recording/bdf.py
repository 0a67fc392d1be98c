"""Turn a session journal into a BDF+ file with edfio (used at close and by ``recover``)."""

from __future__ import annotations

import datetime as dt
import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..core.errors import RecordingError
from ..core.record import NOT_STREAMED, field_of
from ..dsp.quality import hold_finite
from .journal import SIDECAR, START, read_journal, true_runs

MERGE_S = 0.1  # runs of bad samples closer than this share one annotation (a crackling lead is one event)


MAX_RECORD_BYTES = 61440  # EDF+: a data record should not exceed 61440 bytes
MAX_TRIM_S = 1.0  # at most this much of a journal's end may be left out (only where no layout holds it all)


def record_duration_text(spr: int, sfreq: float) -> str | None:
    """The header's record-duration field for ``spr`` samples at ``sfreq`` (8 ASCII characters,
    as edfio writes it), or None where 8 characters cannot state ``spr / sfreq`` exactly (e.g.
    1 sample at 256 Hz, 0.00390625 s): MNE derives the rate from that field, so a rounded
    duration would misstate the rate."""
    text = repr(spr / float(sfreq))
    if text.endswith(".0"):
        text = text[:-2]
    if len(text) > 8 or "e" in text or Fraction(text) != Fraction(spr) / Fraction(float(sfreq)):
        return None
    return text


def record_samples(n_samples: int, sfreq: float, n_signals: int = 1) -> int | None:
    """Samples per data record for a BDF that holds exactly ``n_samples``: the largest divisor of
    ``n_samples`` that is at most 1 s of samples, keeps a record within ``MAX_RECORD_BYTES`` and
    whose duration the header states exactly; None when no divisor does.

    Every data record holds the same number of samples, so an exact BDF needs a record length
    that divides the sample count: 0.1-1 s for most counts, down to one sample per record for a
    prime count (larger file, see benchmarks/RESULTS.md).
    """
    n = int(n_samples)
    if n <= 0:
        return None
    cap = max(1, min(int(float(sfreq)), MAX_RECORD_BYTES // (3 * max(1, n_signals))))
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    for d in sorted({*small, *(n // d for d in small)}, reverse=True):
        if d <= cap and record_duration_text(d, sfreq) is not None:
            return d
    return None


def bdf_samples(n_samples: int, sfreq: float, n_signals: int = 1) -> tuple[int, int | None]:
    """``(n_bdf, samples_per_record)``: how many of a journal's ``n_samples`` a BDF holds exactly.

    ``n_bdf == n_samples`` wherever a record length divides the count (any count at 125, 200,
    250, 500, 1000 Hz); at rates whose one-sample duration 8 characters cannot state (256 Hz:
    records of 4 samples, 0.015625 s) the last few samples (< 4 at 256 Hz) are left out (the
    recorder ends the journal at a chunk boundary that needs none, see
    ``Recorder._trim_to_bdf``; this is for ``recover``). ``(n, None)``
    when no layout within ``MAX_TRIM_S`` exists (a rate such as 127.9 Hz): the last record is
    then padded.
    """
    n = int(n_samples)
    for k in range(0, min(n, max(1, int(MAX_TRIM_S * float(sfreq))))):
        spr = record_samples(n - k, sfreq, n_signals)
        if spr is not None:
            return n - k, spr
    return n, None


def legacy_record_samples(sfreq: float) -> int:
    """Samples per record of the padded layout: the shortest whole number of samples ≥ 0.1 s."""
    if float(sfreq).is_integer():
        return int(sfreq) // math.gcd(int(sfreq), 10)
    return max(1, int(round(sfreq)))


def pack_annotations(annotations, n_records: int, spr: int, sfreq: float, subsecond_s: float,
                     signal_class):
    """The EDF+ annotation signal with ``annotations`` spread over the data records.

    Each record starts with its time-keeping TAL; an annotation goes into its own record when
    there is room, else into the nearest one after it (or before it, at the end). Readers (MNE,
    edfio) take every TAL's onset from the TAL, not from the record it sits in. Every record
    is as long as the fullest one, so spreading a burst of events (a session's start, its end)
    keeps short records short: with one sample per record a record holds its time-keeping TAL
    and at most ``ceil(n_annotations / n_records)`` annotations.
    """
    from edfio.edf_annotations import _data_records_to_annotations_signal, _EdfTAL

    anns = sorted(annotations)
    per = max(1, -(-len(anns) // n_records))  # annotations per record
    slots = []
    for a in anns:
        target = min(n_records - 1, int(round(a.onset * sfreq)) // spr) * per
        slots.append(max(target, slots[-1] + 1) if slots else target)
    last = n_records * per - 1
    for i in range(len(slots) - 1, -1, -1):
        last = min(slots[i], last)
        slots[i] = last
        last -= 1
    texts = [[] for _ in range(n_records)]
    for a, slot in zip(anns, slots):
        texts[slot // per].append(_EdfTAL(a.onset + subsecond_s, a.duration, [a.text]).to_bytes())
    # the time-keeping TAL, exact: record starts are whole microseconds (the duration has ≤ 6 decimals)
    step_us = int(Fraction(record_duration_text(spr, sfreq)) * 10**6)
    sub_us = int(round(subsecond_s * 1e6))
    records = []
    for i in range(n_records):
        q, r = divmod(i * step_us + sub_us, 10**6)
        stamp = f"+{q}.{r:06d}".rstrip("0").rstrip(".")
        records.append(b"\x00".join([f"{stamp}\x14\x14".encode(), *texts[i]]) + b"\x00")
    return _data_records_to_annotations_signal(records, signal_class, spr / sfreq)


def hold_feedback(fb: np.ndarray, col: int, n_samples: int, fill=0.0) -> np.ndarray:
    """Per-sample values of feedback column ``col``: each update's value held until the next."""
    out = np.full(n_samples, fill)
    ends = fb[:, 0].astype(np.int64)  # sample_index after each update
    starts = np.concatenate(([0], ends[:-1]))
    for s, e, v in zip(starts, ends, fb[:, col]):
        if s < n_samples:
            out[s:min(e, n_samples)] = v if np.isfinite(v) else fill
    return out


def bad_sample_annotations(data: np.ndarray, gaps: np.ndarray, ch_names, sfreq: float) -> list[tuple]:
    """``(onset_s, duration_s, text)`` for runs of gap samples (``"gap"``: dropped packets, written
    as the held value) and of other non-finite samples (``"nan/<channels>"``)."""
    n = data.shape[1]
    gap = np.zeros(n, bool)
    for first, length in gaps:
        gap[first:min(n, first + length)] = True
    bad = ~np.isfinite(data)
    out = [(a / sfreq, g / sfreq, "gap") for a, g in true_runs(gap).tolist()]
    merge = int(MERGE_S * sfreq)
    for a, g in true_runs(bad.any(axis=0) & ~gap, merge=merge).tolist():
        chans = [c for c, hit in zip(ch_names, bad[:, a:a + g].any(axis=1)) if hit]
        out.append((a / sfreq, g / sfreq, ("nan/" + ",".join(chans))[:120]))
    return sorted(out)


def pad_to_records(x: np.ndarray, rec: int) -> np.ndarray:
    """``x`` (n_signals × n) with its last value held up to a whole number of ``rec``-sample records
    (only for a rate no exact layout serves; the padding is annotated, never invented signal)."""
    n = x.shape[1]
    pad = -n % rec
    if pad == 0:
        return x
    return np.concatenate([x, np.repeat(x[:, -1:], pad, axis=1)], axis=1)


def n_bdf_signals(j) -> int:
    """The number of BDF signals a journal gives (EEG + the streamed feedback columns)."""
    return len(j.ch_names) + sum(c not in NOT_STREAMED for c in j.columns)


def start_time(folder: Path, header: dict) -> dt.datetime:
    """The recording's start: the first sample's wall-clock time (``start.json``), else the time
    the recorder opened (a journal written before start.json existed, or killed before its first chunk)."""
    try:
        return dt.datetime.fromisoformat(json.loads((folder / START).read_text())["first_sample"])
    except (OSError, ValueError, KeyError, TypeError):
        return dt.datetime.fromisoformat(header.get("started", "2000-01-01T00:00:00"))


def feedback_signals(j, n: int, n_out: int, signal_class) -> list:
    """The feedback record's values as extra BDF signals (``signal_class``: edfio's BdfSignal)
    of ``n_out`` samples: each update's value held until the next, the last one over the
    ``n_out - n`` padding samples, clipped to the field's declared range."""
    from ..core.record import bdf_label

    out = []
    for i, col in enumerate(j.columns):
        if col in NOT_STREAMED:
            continue
        f = field_of(col)
        lo, hi = f.range if f else (-1e6, 1e6)
        values = hold_feedback(j.feedback, i, n_out) if len(j.feedback) and n else np.zeros(n_out)
        if n:
            values[n:] = values[n - 1]
        out.append(signal_class(np.clip(values, lo, hi), j.sfreq, label=bdf_label(col), physical_range=(lo, hi),
                                physical_dimension=(f.unit.split() or [""])[0][:8] if f else ""))
    return out


def journal_annotations(j, n: int, n_out: int, recovered: bool, annotation_class) -> list:
    """The BDF's annotations (``annotation_class``: edfio's EdfAnnotation) for its first ``n``
    journal samples written as ``n_out``: every journal event (the session's end at the last
    sample included), runs of gap and non-finite samples, samples left out or padded, and a
    recovered recording's end."""
    n_journal, sfreq = j.data.shape[1], j.sfreq
    end_s = n / sfreq
    out = [annotation_class(min(e["onset_s"], end_s), e["duration_s"] or None, e["text"][:120])
           for e in j.events + j.recorder_events]
    out += [annotation_class(onset, dur, text)
            for onset, dur, text in bad_sample_annotations(j.data[:, :n], j.gaps, j.ch_names, sfreq)]
    if n_journal > n:
        out.append(annotation_class(end_s, None, f"journal_only/{n_journal - n} samples"))
    if n_out > n:
        out.append(annotation_class(end_s, (n_out - n) / sfreq, "padding (not recorded)"))
    if recovered:
        out.append(annotation_class(end_s, None, "recovered: recording ended unexpectedly"
                                    + ("" if n else " before its first sample")))
    return out


def write_bdf(folder, out_path=None, recovered: bool = False) -> Path:
    """Write ``<folder>/<folder name>.bdf`` from the journal; returns its path.

    EEG at 24 bits over ± the board's range (quantisation step ``2 * range / 2**24``, e.g.
    0.022 µV for a Cyton), the feedback values as extra signals labelled ``MISC <name>`` (MNE's
    ``infer_types=True`` reads them as misc, the EEG as EEG) and every event as an EDF+
    annotation. The header carries the participant code only. The start time is the first
    sample's.

    The BDF holds exactly the journal's samples: its data records are as long as a divisor of
    the sample count (:func:`bdf_samples`). Where the header cannot state any such record's
    duration (the last 1-3 samples at 256 Hz) those samples stay out, annotated
    ``journal_only/<k> samples`` (after ``recover``; at close the recorder has ended the journal at
    a chunk boundary a BDF holds exactly, so that both agree). A rate no layout serves (e.g. 127.9 Hz) gets the last record padded with the last
    value, annotated ``padding (not recorded)``.
    """
    from edfio import Bdf, BdfSignal, EdfAnnotation, Patient, Recording

    j = read_journal(folder)
    folder = j.path
    sfreq = j.sfreq
    n_journal = j.data.shape[1]  # every sample the journal holds
    if n_journal == 0 and not recovered:
        raise RecordingError(f"{folder}: the journal holds no samples; nothing to write.")
    n, spr = bdf_samples(n_journal, sfreq, n_bdf_signals(j)) if n_journal else (0, None)
    rng = float(j.header["range_uv"])
    # edfio refuses non-finite values (annotated instead); a journal without samples (killed before
    # the first chunk) still gives a valid BDF: one record of zeros, annotated
    eeg = hold_finite(j.data[:, :n]) if n else np.zeros((len(j.ch_names), 1))
    if spr is None:
        spr = legacy_record_samples(sfreq) if n else 1
        eeg = pad_to_records(eeg, spr)
    n_out = eeg.shape[1]
    signals = [BdfSignal(np.clip(eeg[i], -rng, rng), sfreq, label=name[:16], transducer_type="EEG electrode",
                         physical_dimension="uV", physical_range=(-rng, rng))
               for i, name in enumerate(j.ch_names)]
    signals += feedback_signals(j, n, n_out, BdfSignal)
    annotations = journal_annotations(j, n, n_out, recovered, EdfAnnotation)
    out = Path(out_path) if out_path else folder / f"{folder.name}.bdf"
    tmp = out.with_suffix(".bdf.part")
    try:
        started = start_time(folder, j.header)
        bdf = Bdf(signals, patient=Patient(code=j.header.get("participant", "X")),
                  recording=Recording(startdate=started.date(), additional=("neurofeed",)),
                  starttime=started.time(), data_record_duration=spr / sfreq, annotations=[])
        # the annotations spread over the records (edfio puts a burst into one record, and every
        # record is as long as the fullest: with short records that would multiply the file)
        bdf._set_signals((*bdf.signals, pack_annotations(annotations, n_out // spr, spr, sfreq,
                                                          started.microsecond / 1e6, BdfSignal)))
        bdf.write(tmp)
        tmp.replace(out)
    except (OSError, ValueError, UnicodeError) as err:
        raise RecordingError(f"{out}: cannot write the BDF: {err}; the journal in {folder} is intact.") from None
    if recovered and not (folder / SIDECAR).exists():
        (folder / SIDECAR).write_text(json.dumps(dict(j.header, recovered=True, samples=int(n)), indent=1))
    return out

