"""The on-disk layout of a session folder and how to read it back.

A session folder holds an append-only journal written as the session goes (flushed and
fsynced at least every second) and, once closed or recovered, a BDF+ file:

``header.json``    written at start: montage, rate, range, participant code, protocol text
``samples.f64``    raw EEG, float64 µV, sample-major (n_samples × n_channels)
``chunks.i64``     the size of every chunk as it arrived (replay uses the same chunks)
``feedback.f64``   one row per update: FEEDBACK_COLUMNS then SI and power per target
``events.jsonl``   one JSON object per event (sample, onset_s, duration_s, text)
``sidecar.json``   written at the end: baseline, threshold history, timing, blocks
``<stem>.bdf``     BDF+ (24 bit): EEG, feedback signals and events as annotations
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import RecordingError

FEEDBACK_COLUMNS = ("sample_index", "si_combined", "threshold", "reward", "gated", "feedback", "feedback_on")
HEADER, SAMPLES, CHUNKS, FEEDBACK, EVENTS, SIDECAR = (
    "header.json", "samples.f64", "chunks.i64", "feedback.f64", "events.jsonl", "sidecar.json")


def feedback_columns(targets) -> list[str]:
    """Column names of ``feedback.f64`` for these targets."""
    return list(FEEDBACK_COLUMNS) + [f"si_{t}" for t in targets] + [f"power_{t}_uv2" for t in targets]


@dataclass
class Journal:
    """A session journal read back from disk (possibly cut short by a crash)."""

    path: Path
    header: dict
    data: np.ndarray  # (n_channels, n_samples) µV
    chunk_sizes: np.ndarray
    feedback: np.ndarray  # (n_updates, n_columns)
    events: list
    sidecar: dict | None

    @property
    def sfreq(self) -> float:
        return float(self.header["sfreq"])

    @property
    def ch_names(self) -> list[str]:
        return list(self.header["ch_names"])

    @property
    def columns(self) -> list[str]:
        return feedback_columns(self.header["targets"])


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
    except (OSError, json.JSONDecodeError) as err:
        raise RecordingError(f"{folder / HEADER}: unreadable header: {err}.") from None
    n_ch = len(header["ch_names"])
    raw = np.fromfile(folder / SAMPLES, dtype=np.float64) if (folder / SAMPLES).exists() else np.zeros(0)
    n = raw.size // n_ch
    data = raw[: n * n_ch].reshape(n, n_ch).T
    chunks = np.fromfile(folder / CHUNKS, dtype=np.int64) if (folder / CHUNKS).exists() else np.zeros(0, np.int64)
    # chunk sizes may run ahead of or behind the samples after a crash: keep what both cover
    csum = np.cumsum(chunks)
    chunks = chunks[csum <= n]
    n_cols = len(feedback_columns(header["targets"]))
    fb = np.fromfile(folder / FEEDBACK, dtype=np.float64) if (folder / FEEDBACK).exists() else np.zeros(0)
    fb = fb[: (fb.size // n_cols) * n_cols].reshape(-1, n_cols)
    events = []
    if (folder / EVENTS).exists():
        for line in (folder / EVENTS).read_text().splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut by the crash
    sidecar = None
    if (folder / SIDECAR).exists():
        try:
            sidecar = json.loads((folder / SIDECAR).read_text())
        except json.JSONDecodeError:
            sidecar = None
    return Journal(folder, header, np.ascontiguousarray(data), chunks, fb, events, sidecar)
