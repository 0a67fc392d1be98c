"""Events: what happened in a session, at a sample index (recorded, annotated, sent over LSL)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Event:
    """Something that happened, at a sample index (onset in seconds = sample / sfreq)."""

    sample: int
    onset_s: float
    duration_s: float
    text: str
