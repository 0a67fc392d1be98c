"""Sham (yoked) feedback and blinding, for controlled trials.

In a yoked-sham session the participant sees the feedback another session showed (another
participant's, or the same participant's earlier one), block by block at the same times, while
the live mu SI is still computed and recorded. :class:`YokedFeedback` holds the recorded trace:
for each block of the recorded session (in schedule order) the feedback value and reward of
every update, by samples since the block started; :meth:`YokedFeedback.at` gives what was
shown ``samples_in_block`` into block ``block_index`` (neutral 0.5 and no reward where the
recording has no such block or time).

Blinding: ``--blind-key FILE`` writes which arm a session was in (``real`` or ``sham``, and the
yoked source) to a key file kept apart from the recording; the session folder says only
``"blinded"``, and reports say so until ``neurofeed report --unblind FILE`` is given the key.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from .errors import NeurofeedError

NEUTRAL_FEEDBACK = 0.5
_BLOCK_START = re.compile(r"^block_start/([^/]+)")


class YokedFeedback:
    """The feedback trace of a recorded session, to replay to another participant.

    Parameters
    ----------
    session_dir : path
        A neurofeed session folder (journal) whose feedback is shown.
    """

    def __init__(self, session_dir):
        from .recording.journal import is_journal, read_journal

        if not is_journal(session_dir):
            raise NeurofeedError(f"--yoke-from {session_dir}: not a neurofeed session folder (it needs header.json "
                                 f"and samples.f64); give the folder of a recorded session.")
        j = read_journal(session_dir)
        self.source = str(j.path)
        self.sfreq = j.sfreq
        cols = j.columns
        fb = j.feedback
        if len(fb) == 0:
            raise NeurofeedError(f"--yoke-from {session_dir}: the session recorded no feedback updates.")
        sample = fb[:, cols.index("sample_index")].astype(np.int64)
        feedback = fb[:, cols.index("feedback")]
        reward = fb[:, cols.index("reward")]
        on = fb[:, cols.index("feedback_on")]
        starts = [(int(e["sample"]), m.group(1)) for e in j.events if (m := _BLOCK_START.match(e["text"]))]
        self.blocks: list[dict] = []
        for k, (start, label) in enumerate(starts):
            end = starts[k + 1][0] if k + 1 < len(starts) else int(sample[-1]) + 1
            # updates whose newest sample lies in this block (sample_index counts samples after the update)
            sel = (sample > start) & (sample <= end)
            self.blocks.append({"label": label, "start": start,
                                "offset": sample[sel] - start, "feedback": feedback[sel], "reward": reward[sel],
                                "on": on[sel]})

    def at(self, block_index: int, samples_in_block: int) -> tuple[float, bool]:
        """(feedback 0..1, reward) shown ``samples_in_block`` into block ``block_index`` of the recording."""
        if not 0 <= block_index < len(self.blocks):
            return NEUTRAL_FEEDBACK, False
        b = self.blocks[block_index]
        k = int(np.searchsorted(b["offset"], samples_in_block, side="right")) - 1
        if k < 0 or not b["on"][k]:
            return NEUTRAL_FEEDBACK, False
        v = float(b["feedback"][k])
        return (v if v == v else NEUTRAL_FEEDBACK), bool(b["reward"][k])

    def describe(self) -> dict:
        """What the key file records about the yoked source."""
        return {"yoked_from": self.source, "blocks": [b["label"] for b in self.blocks]}


def write_blind_key(path, session_folder, arm: str, yoked: YokedFeedback | None = None) -> Path:
    """Write the arm of a session to the key file ``path`` (appending to a trial's key file)."""
    if arm not in ("real", "sham"):
        raise NeurofeedError(f"arm must be 'real' or 'sham', not {arm!r}.")
    path = Path(path)
    try:
        doc = json.loads(path.read_text()) if path.exists() else {"sessions": {}}
    except json.JSONDecodeError:
        raise NeurofeedError(f"--blind-key {path}: not a neurofeed key file (unreadable JSON).") from None
    entry = {"arm": arm}
    if yoked is not None:
        entry.update(yoked.describe())
    doc.setdefault("sessions", {})[Path(session_folder).name] = entry
    try:
        path.write_text(json.dumps(doc, indent=1))
    except OSError as err:
        raise NeurofeedError(f"--blind-key {path}: cannot write the key file: {err.strerror or err}.") from None
    return path


def read_blind_key(path, session_folder) -> dict:
    """The key file's entry for a session, or a one-line error naming what is missing."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise NeurofeedError(f"--unblind {path}: cannot read the key file: {err}.") from None
    entry = doc.get("sessions", {}).get(Path(session_folder).name)
    if entry is None:
        raise NeurofeedError(f"--unblind {path}: the key file has no entry for session {Path(session_folder).name}.")
    return entry
