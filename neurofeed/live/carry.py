"""``[baseline] carry = "last"``: what a session takes over from the participant's last one."""

from __future__ import annotations

import json
from pathlib import Path

from ..protocol.schema import Protocol


def last_session_carry(participant_dir, protocol: Protocol, targets) -> dict | None:
    """What ``[baseline] carry = "last"`` takes from the participant's last finished session:
    ``{"source", "baseline_uv2", "thresholds", "band_hz"}`` read from its ``sidecar.json``, or
    None when there is no earlier session with a baseline for these targets."""
    folder = Path(participant_dir)
    if not folder.is_dir():
        return None
    for sess in sorted((p for p in folder.iterdir() if p.is_dir()), reverse=True):  # names start with the time
        side = sess / "sidecar.json"
        try:
            doc = json.loads(side.read_text())
        except (OSError, ValueError):
            continue
        base = doc.get("baseline_uv2") or {}
        thr = doc.get("threshold_final") or {}
        if all(t in base for t in targets) and {"up", "down"} <= set(thr):
            return {"source": str(sess), "baseline_uv2": {t: float(base[t]) for t in targets},
                    "thresholds": {"up": float(thr["up"]), "down": float(thr["down"])},
                    "band_hz": doc.get("individual_band_hz")}
    return None
