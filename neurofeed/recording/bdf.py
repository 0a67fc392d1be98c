"""Turn a session journal into a BDF+ file with edfio (used at close and by ``recover``)."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np

from ..core.errors import RecordingError
from ..core.record import NOT_STREAMED, field_of
from .journal import SIDECAR, START, read_journal

MERGE_S = 0.1  # runs of bad samples closer than this share one annotation (a crackling lead is one event)


def record_samples(sfreq: float) -> int:
    """Samples per BDF data record: the shortest record of a whole number of samples ≥ 0.1 s."""
    if float(sfreq).is_integer():
        return int(sfreq) // math.gcd(int(sfreq), 10)
    return max(1, int(round(sfreq)))


def hold_feedback(fb: np.ndarray, col: int, n_samples: int, fill=0.0) -> np.ndarray:
    """Per-sample values of feedback column ``col``: each update's value held until the next."""
    out = np.full(n_samples, fill)
    ends = fb[:, 0].astype(np.int64)  # sample_index after each update
    starts = np.concatenate(([0], ends[:-1]))
    for s, e, v in zip(starts, ends, fb[:, col]):
        if s < n_samples:
            out[s:min(e, n_samples)] = v if np.isfinite(v) else fill
    return out


def hold_finite(x: np.ndarray) -> np.ndarray:
    """``x`` (n_channels × n_samples) with every non-finite sample replaced by the channel's last
    finite value before it (its first finite value at the start, 0 for a channel with none)."""
    ok = np.isfinite(x)
    if ok.all():
        return x
    idx = np.where(ok, np.arange(x.shape[1]), -1)
    np.maximum.accumulate(idx, axis=1, out=idx)
    first = np.where(ok.any(axis=1), ok.argmax(axis=1), -1)
    idx = np.where(idx < 0, first[:, None], idx)
    out = np.take_along_axis(np.where(ok, x, 0.0), np.maximum(idx, 0), axis=1)
    out[idx < 0] = 0.0
    return out


def runs(mask: np.ndarray, merge: int = 0) -> list[tuple[int, int]]:
    """``(start, stop)`` of the runs of True in ``mask``, runs closer than ``merge`` samples joined."""
    m = np.concatenate(([False], mask, [False]))
    edges = np.flatnonzero(m[1:] != m[:-1])
    out: list[list[int]] = []
    for a, b in zip(edges[0::2], edges[1::2]):
        if out and a - out[-1][1] < merge:
            out[-1][1] = int(b)
        else:
            out.append([int(a), int(b)])
    return [(a, b) for a, b in out]


def bad_sample_annotations(data: np.ndarray, gaps: np.ndarray, ch_names, sfreq: float) -> list[tuple]:
    """``(onset_s, duration_s, text)`` for runs of gap samples (``"gap"``: dropped packets, written
    as the held value) and of other non-finite samples (``"nan/<channels>"``)."""
    n = data.shape[1]
    gap = np.zeros(n, bool)
    for first, length in gaps:
        gap[first:min(n, first + length)] = True
    bad = ~np.isfinite(data)
    out = [(a / sfreq, (b - a) / sfreq, "gap") for a, b in runs(gap)]
    merge = int(MERGE_S * sfreq)
    for a, b in runs(bad.any(axis=0) & ~gap, merge):
        chans = [c for c, hit in zip(ch_names, bad[:, a:b].any(axis=1)) if hit]
        out.append((a / sfreq, (b - a) / sfreq, ("nan/" + ",".join(chans))[:120]))
    return sorted(out)


def pad_to_records(x: np.ndarray, rec: int) -> np.ndarray:
    """``x`` (n_signals × n) with its last value held up to a whole number of ``rec``-sample records
    (a BDF holds whole data records only; the padding is annotated, never invented signal)."""
    n = x.shape[1]
    pad = -n % rec
    if pad == 0:
        return x
    return np.concatenate([x, np.repeat(x[:, -1:], pad, axis=1)], axis=1)


def start_time(folder: Path, header: dict) -> dt.datetime:
    """The recording's start: the first sample's wall-clock time (``start.json``), else the time
    the recorder opened (a journal written before start.json existed, or killed before its first chunk)."""
    try:
        return dt.datetime.fromisoformat(json.loads((folder / START).read_text())["first_sample"])
    except (OSError, ValueError, KeyError, TypeError):
        return dt.datetime.fromisoformat(header.get("started", "2000-01-01T00:00:00"))


def write_bdf(folder, out_path=None, recovered: bool = False) -> Path:
    """Write ``<folder>/<folder name>.bdf`` from the journal; returns its path.

    EEG at 24 bits over ± the board's range (quantisation step ``2 * range / 2**24``, e.g.
    0.022 µV for a Cyton), the feedback values as extra signals and every event as an
    EDF+ annotation. The header carries the participant code only. Every journal sample is
    written: a BDF holds whole data records, so the last record is completed with the last
    value held and annotated ``padding (not recorded)``. The start time is the first sample's.
    """
    from edfio import Bdf, BdfSignal, EdfAnnotation, Patient, Recording

    j = read_journal(folder)
    folder = j.path
    sfreq = j.sfreq
    rec = record_samples(sfreq)
    n = j.data.shape[1]  # every sample the journal holds
    if n == 0 and not recovered:
        raise RecordingError(f"{folder}: the journal holds no samples; nothing to write.")
    rng = float(j.header["range_uv"])
    # edfio refuses non-finite values (annotated instead); a journal without samples (killed before
    # the first chunk) still gives a valid BDF: one record of zeros, annotated
    eeg = hold_finite(j.data) if n else np.zeros((len(j.ch_names), 1))
    eeg = pad_to_records(eeg, rec)
    n_out = eeg.shape[1]
    signals = [BdfSignal(np.clip(eeg[i], -rng, rng), sfreq, label=name[:16], transducer_type="EEG electrode",
                         physical_dimension="uV", physical_range=(-rng, rng))
               for i, name in enumerate(j.ch_names)]
    # the feedback record's values as extra signals (each update's value held until the next)
    cols = j.columns
    for i, col in enumerate(cols):
        if col in NOT_STREAMED:
            continue
        f = field_of(col)
        lo, hi = f.range if f else (-1e6, 1e6)
        values = hold_feedback(j.feedback, i, n_out) if len(j.feedback) and n else np.zeros(n_out)
        if n:
            values[n:] = values[n - 1]
        signals.append(BdfSignal(np.clip(values, lo, hi), sfreq, label=col[:16], physical_range=(lo, hi),
                                 physical_dimension=(f.unit.split() or [""])[0][:8] if f else ""))
    end_s = n / sfreq
    # every journal event, the session's end (at the last sample) included
    annotations = [EdfAnnotation(min(e["onset_s"], end_s), e["duration_s"] or None, e["text"][:120])
                   for e in j.events + j.recorder_events]
    annotations += [EdfAnnotation(onset, dur, text)
                    for onset, dur, text in bad_sample_annotations(j.data, j.gaps, j.ch_names, sfreq)]
    if n_out > n:
        annotations.append(EdfAnnotation(end_s, (n_out - n) / sfreq, "padding (not recorded)"))
    if recovered:
        annotations.append(EdfAnnotation(end_s, None, "recovered: recording ended unexpectedly"
                                         + ("" if n else " before its first sample")))
    out = Path(out_path) if out_path else folder / f"{folder.name}.bdf"
    tmp = out.with_suffix(".bdf.part")
    try:
        started = start_time(folder, j.header)
        bdf = Bdf(signals, patient=Patient(code=j.header.get("participant", "X")),
                  recording=Recording(startdate=started.date(), additional=("neurofeed",)),
                  starttime=started.time(), data_record_duration=rec / sfreq,
                  annotations=annotations)
        bdf.write(tmp)
        tmp.replace(out)
    except (OSError, ValueError, UnicodeError) as err:
        raise RecordingError(f"{out}: cannot write the BDF: {err}; the journal in {folder} is intact.") from None
    if recovered and not (folder / SIDECAR).exists():
        (folder / SIDECAR).write_text(json.dumps(dict(j.header, recovered=True, samples=int(n)), indent=1))
    return out


def recover(path) -> Path:
    """Turn what a killed session left into a valid BDF+ (loses at most the unsynced last second).

    Raises :class:`RecordingError` (one line) when nothing can be recovered, never anything else.
    """
    try:
        return write_bdf(path, recovered=True)
    except RecordingError:
        raise
    except Exception as err:  # noqa: BLE001 - a damaged journal must end in one clear line
        raise RecordingError(f"{path}: cannot recover the session: {type(err).__name__}: {err}.") from None
