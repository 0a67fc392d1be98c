"""The on-disk layout of a session folder and how to read it back.

A session folder holds an append-only journal written as the session goes (flushed and
fsynced at least every second) and, once closed or recovered, a BDF+ file:

``header.json``    written at start: montage, rate, range, participant code, protocol text,
                   ``feedback_columns`` (the record layout of feedback.f64)
``samples.f64``    raw EEG, float64 µV, sample-major (n_samples × n_channels)
``timestamps.f64`` the source's timestamp of every sample (s, float64; BrainFlow/LSL clock)
``chunks.i64``     the size of every chunk as it arrived (replay uses the same chunks)
``gaps.i64``       runs of gap samples (dropped packets, NaN in samples.f64): (first sample, length)
``feedback.f64``   one row per update, the record of neurofeed.core.record (columns in header.json)
``events.jsonl``   one JSON object per event (sample, onset_s, duration_s, text)
``recorder.jsonl`` the recorder's own events (the disk fell behind / caught up, samples memory could
                   not hold), kept apart from the session's events (replay re-derives those)
``start.json``     the wall-clock time of the first sample (``first_sample``; the BDF's start)
``spill.bin``      only while the disk falls behind: queued items past the memory cap, each with
                   its byte offset in its journal file (``recover`` puts a killed session's in place)
``sidecar.json``   written at the end: baseline, threshold history, timing, blocks
``<stem>.bdf``     BDF+ (24 bit): EEG, feedback signals and events as annotations
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import RecordingError
from ..core.record import as_records, record_columns

HEADER, SAMPLES, TIMESTAMPS, CHUNKS, GAPS, FEEDBACK, EVENTS, SIDECAR = (
    "header.json", "samples.f64", "timestamps.f64", "chunks.i64", "gaps.i64", "feedback.f64", "events.jsonl",
    "sidecar.json")
START, SPILL, RECORDER_EVENTS = "start.json", "spill.bin", "recorder.jsonl"


def feedback_columns(targets) -> list[str]:
    """Column names of ``feedback.f64`` written now for these targets (the record's columns)."""
    return record_columns(targets)


def header_columns(header: dict) -> list[str]:
    """The columns of a journal's ``feedback.f64``, as its header recorded them."""
    return list(header["feedback_columns"])


def true_runs(mask: np.ndarray, offset: int = 0, merge: int = 0) -> np.ndarray:
    """The runs of True in ``mask``: the one runs helper of the recording (the journal's gap
    records, the BDF's annotations).

    Parameters
    ----------
    mask : ndarray of bool, shape (n_samples,)
    offset : int
        Added to every run's first sample (the mask's first sample in the whole stream).
    merge : int
        Runs separated by fewer than ``merge`` samples of False are joined (0: none).

    Returns
    -------
    runs : ndarray of int64, shape (n_runs, 2)
        ``(first sample + offset, length)`` per run, in order.
    """
    m = np.concatenate(([False], np.asarray(mask, dtype=bool), [False]))
    edges = np.flatnonzero(m[1:] != m[:-1])
    starts, ends = edges[0::2], edges[1::2]
    out = np.column_stack([starts + offset, ends - starts]).astype(np.int64)
    return merge_runs(out, merge) if merge > 1 else out


def merge_runs(runs: np.ndarray, merge: int = 1) -> np.ndarray:
    """Join ``(first, length)`` runs (n_runs × 2, in order) separated by fewer than ``merge``
    samples; the default 1 joins only runs that continue one another (a gap written chunk by
    chunk). Returns int64 ``(first, length)`` rows."""
    out: list[list[int]] = []
    for first, length in np.asarray(runs).tolist():
        if out and 0 <= first - (out[-1][0] + out[-1][1]) < merge:
            out[-1][1] = first + length - out[-1][0]
        else:
            out.append([first, length])
    return np.array(out, dtype=np.int64).reshape(-1, 2)


@dataclass
class Journal:
    """A session journal read back from disk (possibly cut short by a crash)."""

    path: Path
    header: dict
    data: np.ndarray  # (n_channels, n_samples) µV
    chunk_sizes: np.ndarray
    feedback: np.ndarray  # (n_updates, n_columns)
    timestamps: np.ndarray  # (n_samples,) source clock (s); NaN where the journal has none
    gaps: np.ndarray  # (n_runs, 2) int64: first sample, length of each run of gap samples
    events: list
    sidecar: dict | None
    recorder_events: list = field(default_factory=list)  # the recorder's own (recorder.jsonl)

    @property
    def sfreq(self) -> float:
        return float(self.header["sfreq"])

    @property
    def ch_names(self) -> list[str]:
        return list(self.header["ch_names"])

    @property
    def columns(self) -> list[str]:
        return header_columns(self.header)

    @property
    def records(self) -> np.ndarray:
        """``feedback`` as a structured array of records (a view; fields named by ``columns``)."""
        return as_records(self.feedback, self.columns)


def is_journal(path) -> bool:
    """True if ``path`` is a neurofeed session folder (or a file inside one)."""
    p = Path(path)
    folder = p if p.is_dir() else p.parent
    return (folder / HEADER).exists() and (folder / SAMPLES).exists()


def read_journal(path) -> Journal:
    """Read a session folder; a trailing partial record (crash mid-write) is dropped."""
    p = Path(path)
    folder = p if p.is_dir() else p.parent
    if not (folder / HEADER).exists():
        raise RecordingError(f"{folder}: not a neurofeed session folder (no {HEADER}).")
    try:
        header = json.loads((folder / HEADER).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RecordingError(f"{folder / HEADER}: unreadable header: {err}.") from None
    missing = [k for k in ("ch_names", "sfreq", "targets", "range_uv") if k not in header] \
        if isinstance(header, dict) else ["ch_names"]
    if missing:
        raise RecordingError(f"{folder / HEADER}: the header lacks {', '.join(missing)}; it is not a neurofeed "
                             f"session header.")
    n_ch = len(header["ch_names"])
    raw = np.fromfile(folder / SAMPLES, dtype=np.float64) if (folder / SAMPLES).exists() else np.zeros(0)
    n = raw.size // n_ch
    data = raw[: n * n_ch].reshape(n, n_ch).T
    chunks = np.fromfile(folder / CHUNKS, dtype=np.int64) if (folder / CHUNKS).exists() else np.zeros(0, np.int64)
    # chunk sizes may run ahead of or behind the samples after a crash: keep what both cover
    csum = np.cumsum(chunks)
    chunks = chunks[csum <= n]
    ts = np.fromfile(folder / TIMESTAMPS, dtype=np.float64) if (folder / TIMESTAMPS).exists() else np.zeros(0)
    ts = np.concatenate([ts[:n], np.full(max(0, n - ts.size), np.nan)])
    gaps = np.fromfile(folder / GAPS, dtype=np.int64) if (folder / GAPS).exists() else np.zeros(0, np.int64)
    gaps = gaps[: gaps.size // 2 * 2].reshape(-1, 2)
    gaps = merge_runs(gaps[gaps[:, 0] < n])
    n_cols = len(header_columns(header))
    fb = np.fromfile(folder / FEEDBACK, dtype=np.float64) if (folder / FEEDBACK).exists() else np.zeros(0)
    fb = fb[: (fb.size // n_cols) * n_cols].reshape(-1, n_cols)
    events, recorder_events = read_events(folder / EVENTS), read_events(folder / RECORDER_EVENTS)
    sidecar = None
    if (folder / SIDECAR).exists():
        try:
            sidecar = json.loads((folder / SIDECAR).read_text())
        except json.JSONDecodeError:
            sidecar = None
    return Journal(folder, header, np.ascontiguousarray(data), chunks, fb, ts, gaps, events, sidecar, recorder_events)


def read_events(path) -> list:
    """The JSON lines of an events file (none if it is missing; a last line cut by a crash is dropped)."""
    events = []
    if Path(path).exists():
        for line in Path(path).read_text().splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut by the crash
    return events
