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
        self.seconds_scale = float(j.header.get("seconds_scale", 1.0))
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

    def shown(self, st, block_index: int, samples_in_block: int, sfreq: float) -> tuple[float, bool]:
        """What the participant view shows for the live state ``st``: the recording's feedback at
        the same time into the same block while the live session gives feedback (neutral, no
        reward while it does not: rest, pause, signal lost).

        Parameters
        ----------
        st : FeedbackState
            The live state (its ``feedback_on``).
        block_index : int
            The block the update's samples belong to (running when its chunk began).
        samples_in_block : int
            Live samples from that block's start to the update's newest sample.
        sfreq : float
            The live sampling rate (Hz); the recording's times are matched in seconds.
        """
        if not st.feedback_on or st.signal_lost:
            return NEUTRAL_FEEDBACK, False
        return self.at(block_index, int(round(samples_in_block * self.sfreq / float(sfreq))))

    def describe(self) -> dict:
        """What the key file records about the yoked source."""
        return {"yoked_from": self.source, "blocks": [b["label"] for b in self.blocks]}


class JournalShown:
    """What a recorded session's participant view showed, read back from its journal (replay).

    A yoked or blinded session is replayed with the shown values of its own journal (the yoke
    source need not be at hand, and a blinded folder does not name it); the live values are
    recomputed as always.

    Parameters
    ----------
    feedback : ndarray, shape (n_updates, n_columns)
        The journal's feedback records.
    columns : list of str
    """

    def __init__(self, feedback: np.ndarray, columns):
        cols = list(columns)
        sample = feedback[:, cols.index("sample_index")].astype(np.int64)
        # the first record per sample is the chunk's update (a signal-lost record may follow it)
        self.sample, first = np.unique(sample, return_index=True)
        self.feedback = feedback[first, cols.index("feedback")]  # the shown values (live ones: live_*)
        self.reward = feedback[first, cols.index("reward")] > 0

    def shown(self, st, block_index: int, samples_in_block: int, sfreq: float) -> tuple[float, bool]:
        """The recorded shown values of the update at ``st.sample_index`` (neutral if none)."""
        k = int(np.searchsorted(self.sample, st.sample_index))
        if k >= self.sample.size or self.sample[k] != st.sample_index:
            return NEUTRAL_FEEDBACK, False
        return float(self.feedback[k]), bool(self.reward[k])


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


def sham_setup(protocol, yoke_from=None, blind_key=None, record: bool = True,
               seconds_scale: float = 1.0) -> YokedFeedback | None:
    """Check a session's sham options and load the yoked trace (None for real feedback).

    Raises a one-line :class:`NeurofeedError` where protocol and options disagree: a yoked
    protocol without ``--yoke-from``, ``--yoke-from`` with a real-feedback protocol, a blind
    key for a session that is not recorded, or a yoked recording whose blocks or
    ``--seconds-scale`` differ from this session's (the participant would see its feedback at
    the wrong times).
    """
    mode = protocol.sham.mode
    if mode == "yoked" and not yoke_from:
        raise NeurofeedError(f"{protocol.path or protocol.name}: [sham] mode = \"yoked\" needs --yoke-from SESSION_DIR "
                             f"(the recorded session whose feedback the participant sees).")
    if yoke_from and mode != "yoked":
        raise NeurofeedError(f"--yoke-from {yoke_from}: protocol {protocol.name} gives real feedback ([sham] mode = "
                             f"{mode!r}); use a protocol with [sham] mode = \"yoked\".")
    if blind_key and not record:
        raise NeurofeedError("--blind-key needs a recorded session (drop --no-record).")
    if not yoke_from:
        return None
    yoked = YokedFeedback(yoke_from)
    if yoked.seconds_scale != float(seconds_scale):
        raise NeurofeedError(f"--yoke-from {yoke_from}: recorded at --seconds-scale {yoked.seconds_scale:g}, this "
                             f"session runs at {float(seconds_scale):g}; use the same scale.")
    if protocol.markers.mode == "internal":
        want = [b.label for b in protocol.schedule()]
        got = [b["label"] for b in yoked.blocks]
        if got != want:
            k = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w), min(len(got), len(want)))
            what = (f"block {k + 1} is {got[k]!r} there and {want[k]!r} here" if k < min(len(got), len(want))
                    else f"it has {len(got)} blocks, this schedule {len(want)}")
            raise NeurofeedError(f"--yoke-from {yoke_from}: its schedule differs from protocol {protocol.name}'s "
                                 f"({what}); yoke from a complete session of the same schedule.")
    return yoked


def header_sham(protocol, yoked: YokedFeedback | None, blind_key=None) -> tuple[str, object]:
    """(protocol text, ``sham`` entry) for header.json: blinded sessions store ``"blinded"`` and
    the protocol text without its ``[sham]`` table, whichever the arm."""
    from .protocol.schema import redact_sham

    if blind_key:
        return redact_sham(protocol.text), "blinded"
    entry = {"mode": protocol.sham.mode}
    if yoked is not None:
        entry.update(yoked.describe())
    return protocol.text, entry


def is_blinded(header: dict) -> bool:
    """True for a session recorded blinded (its folder does not say the arm)."""
    return header.get("sham") == "blinded"


def arm_of(header: dict, key_file=None, folder=None) -> str:
    """The arm as reports show it: ``"blinded"`` (no key), else ``"real"`` or ``"sham (yoked from X)"``."""
    if is_blinded(header):
        if key_file is None:
            return "blinded"
        entry = read_blind_key(key_file, folder)
    else:
        sham = header.get("sham") or {}
        entry = {"arm": "sham" if sham.get("mode") == "yoked" else "real", **sham}
    if entry.get("arm") == "sham":
        return f"sham (yoked from {entry.get('yoked_from', '?')})"
    return str(entry.get("arm", "real"))


def replay_shown(journal):
    """The shown-values source a journal replays with: its own recorded values for a yoked or
    blinded session (None: recompute them as the live feedback)."""
    h = journal.header
    sham = h.get("sham")
    if is_blinded(h) or (isinstance(sham, dict) and sham.get("mode") == "yoked"):
        return JournalShown(journal.feedback, journal.columns)
    return None
