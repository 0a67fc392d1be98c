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
The live values that would tell the arm (the live SI, reward and gate beside the shown feedback)
are sealed: encrypted into the session folder with a key kept only in the key file
(:class:`Sealer`, :func:`unseal`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from ..core.errors import NeurofeedError

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
        from ..recording.journal import is_journal, read_journal

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


def write_blind_key(path, session_folder, arm: str, yoked: YokedFeedback | None = None,
                    seal_key: str | None = None) -> Path:
    """Write the arm of a session to the key file ``path`` (appending to a trial's key file), with
    the Fernet key of its sealed values (``seal_key``, :class:`Sealer`); the file is readable by
    its owner only."""
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
    if seal_key is not None:
        entry["seal_key"] = seal_key
    doc.setdefault("sessions", {})[_key_name(session_folder)] = entry
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(doc, indent=1))
    except OSError as err:
        raise NeurofeedError(f"--blind-key {path}: cannot write the key file: {err.strerror or err}.") from None
    return path


def _key_name(session_folder) -> str:
    """A session's entry in the key file: ``<participant>/<folder>`` (two participants' sessions
    started in the same second have folders of one name)."""
    p = Path(session_folder)
    return f"{p.parent.name}/{p.name}"


def read_blind_key(path, session_folder) -> dict:
    """The key file's entry for a session, or a one-line error naming what is missing."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise NeurofeedError(f"--unblind {path}: cannot read the key file: {err}.") from None
    sessions = doc.get("sessions", {})
    entry = sessions.get(_key_name(session_folder), sessions.get(Path(session_folder).name))  # or an older key file
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
    from ..protocol.schema import redact_sham

    if blind_key:
        # blank lines normalised in both arms: the one left where [sham] stood would tell the arm
        text = re.sub(r"\n(?:[ \t]*\n)+", "\n\n", redact_sham(protocol.text)).strip("\n") + "\n"
        return text, "blinded"
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


# -- sealed blinding ---------------------------------------------------------------------------
# A blinded session keeps, in clear, only what is the same kind of data in both arms: the EEG,
# the shown feedback and reward, the schedule. The live values that drive the feedback in the
# real arm (and would, set beside the shown values, tell the arms apart) are written encrypted
# into SEALED_FILE in the session folder, with a per-session Fernet key kept only in the blind-key
# file; the journal, BDF, sidecar, LSL outlets and reports carry NaN/None in their place.

SEALED_FILE = "sealed.fernet"
#: FeedbackState attributes sealed in a blinded session (NaN in clear)
SEALED_ATTRS = ("si_combined", "threshold", "gated", "si_bar", "live_feedback", "live_reward",
                "si", "power_uv2", "reward_rate")
#: events sealed in a blinded session: the live reward and gate (the real arm's reward never
#: comes on while gated; set beside the shown reward they would tell the arm)
SEALED_EVENTS = ("reward_on", "reward_off", "gate_on", "gate_off")
#: summary keys sealed (None in clear): session-level and per-block
SEALED_SUMMARY = ("reward_rate", "threshold_history")
SEALED_BLOCK = ("si_pooled", "mean_si_combined", "mean_power_uv2", "reward_rate")


def new_seal_key() -> str:
    """A fresh Fernet key (url-safe base64 text), for one blinded session."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode("ascii")


class Sealer:
    """Seals a blinded session's live values: a sink that writes them encrypted to
    ``folder/SEALED_FILE`` (one Fernet token per line, written by its own thread so the
    acquisition thread only enqueues), and the masks the other sinks see through
    :class:`BlindedSink`.

    Parameters
    ----------
    folder : path
        The session folder (exists).
    targets : sequence of str
    key : str
        The session's Fernet key (:func:`new_seal_key`), stored only in the blind-key file.
    """

    def __init__(self, folder, targets, key: str):
        import queue
        import threading

        from cryptography.fernet import Fernet

        from ..core.record import active_fields, new_row

        self._fernet = Fernet(key.encode("ascii"))
        self.path = Path(folder) / SEALED_FILE
        self._file = open(self.path, "xb")  # a new file, never appended to
        self._fields = active_fields()
        self._row = new_row(targets)
        self._last = self._masked = None
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._writer, name="neurofeed-sealer", daemon=True)
        self._thread.start()

    def _writer(self) -> None:
        while True:
            doc = self._q.get()
            if doc is None:
                break
            self._file.write(self._fernet.encrypt(json.dumps(doc).encode()) + b"\n")
            if self._q.empty():
                self._file.flush()
        self._file.flush()
        self._file.close()

    # the sink: the clear values, sealed
    def on_state(self, st) -> None:
        from ..core.record import state_to_row

        self._q.put({"row": state_to_row(st, self._row, self._fields).tolist()})

    def on_events(self, events) -> None:
        for e in events:
            if e.text.startswith(SEALED_EVENTS):
                self._q.put({"event": {"sample": e.sample, "onset_s": e.onset_s, "duration_s": e.duration_s,
                                       "text": e.text}})

    # what the other sinks see
    def mask(self, st):
        """``st`` with its sealed attributes NaN (one copy per state, shared by all sinks)."""
        if st is not self._last:
            import dataclasses

            nan = float("nan")
            self._masked = dataclasses.replace(st, **{a: (np.full(np.shape(getattr(st, a)), nan)
                                                          if np.ndim(getattr(st, a)) else nan)
                                                      for a in SEALED_ATTRS if hasattr(st, a)})
            self._last = st
        return self._masked

    @staticmethod
    def clear_events(events) -> list:
        """The events that stay in clear."""
        return [e for e in events if not e.text.startswith(SEALED_EVENTS)]

    def seal_summary(self, summary: dict) -> dict:
        """Seal the summary's live values and close the sealed file; returns the clear summary
        (sealed keys None), for the sidecar."""
        clear, sealed = split_summary(summary)
        self._q.put({"summary": sealed})
        self.close()
        return clear

    def close(self) -> None:
        if self._thread.is_alive():
            self._q.put(None)
            self._thread.join(timeout=30)


def split_summary(summary: dict) -> tuple[dict, dict]:
    """``(clear, sealed)``: the summary with its sealed keys None, and those keys' values
    (``blocks``: one dict per block)."""
    clear = dict(summary)
    sealed = {k: clear[k] for k in SEALED_SUMMARY if k in clear}
    clear.update({k: None for k in sealed})
    if "blocks" in summary:
        sealed["blocks"] = [{k: b[k] for k in SEALED_BLOCK if k in b} for b in summary["blocks"]]
        clear["blocks"] = [{**b, **{k: None for k in SEALED_BLOCK if k in b}} for b in summary["blocks"]]
    return clear, sealed


def sealed_columns(columns) -> list[int]:
    """Indices of the record columns a blinded session seals (NaN in clear)."""
    from ..core.record import field_of

    return [i for i, c in enumerate(columns) if (f := field_of(c)) is not None and f.attr in SEALED_ATTRS]


def mask_rows(rows: np.ndarray, columns) -> np.ndarray:
    """A copy of feedback records with the sealed columns NaN (a blinded replay's output)."""
    out = np.array(rows, dtype=np.float64, copy=True)
    out[:, sealed_columns(columns)] = np.nan
    return out


class BlindedSink:
    """A sink as a blinded session's other sinks see it: states with the sealed values NaN,
    events without the sealed ones (:class:`Sealer`)."""

    def __init__(self, sink, sealer: Sealer):
        self.sink, self._sealer = sink, sealer
        self.publish_first = getattr(sink, "publish_first", False)
        if hasattr(sink, "on_chunk"):
            self.on_chunk = sink.on_chunk
        if hasattr(sink, "on_state"):
            self.on_state = lambda st: sink.on_state(sealer.mask(st))
        if hasattr(sink, "on_events"):
            self.on_events = lambda events: sink.on_events(sealer.clear_events(events))


def unseal(folder, key_file) -> dict:
    """A blinded session's sealed values, decrypted with the key from the blind-key file.

    Returns
    -------
    dict
        ``rows`` (n_updates × columns float64, the full records as the live session made them),
        ``events`` (the sealed events), ``summary`` (the sealed summary keys; ``blocks``: per
        block, in order). Raises a one-line :class:`NeurofeedError` when the key does not fit.
    """
    from cryptography.fernet import Fernet, InvalidToken

    entry = read_blind_key(key_file, folder)
    path = Path(folder) / SEALED_FILE
    if "seal_key" not in entry or not path.exists():
        raise NeurofeedError(f"--unblind {key_file}: session {Path(folder).name} has no sealed values "
                             f"({SEALED_FILE} or its key is missing; recorded before values were sealed?).")
    f = Fernet(entry["seal_key"].encode("ascii"))
    rows, events, summary = [], [], {}
    lines = [x.strip() for x in path.read_bytes().splitlines() if x.strip()]
    for k, line in enumerate(lines):
        try:
            doc = json.loads(f.decrypt(line))
        except InvalidToken:
            if k and k == len(lines) - 1:  # a line cut short by a crash: everything before it holds
                break
            raise NeurofeedError(f"--unblind {key_file}: its key does not open {path} (a different session's "
                                 f"key file?).") from None
        if "row" in doc:
            rows.append(doc["row"])
        elif "event" in doc:
            events.append(doc["event"])
        elif "summary" in doc:
            summary = doc["summary"]
    return {"rows": np.array(rows, dtype=np.float64), "events": events, "summary": summary}


def unsealed_summary(clear: dict, sealed: dict) -> dict:
    """The sidecar summary with its sealed keys restored from :func:`unseal`'s ``summary``."""
    out = dict(clear, **{k: v for k, v in sealed.items() if k != "blocks"})
    if "blocks" in clear:
        out["blocks"] = [{**b, **s} for b, s in zip(clear["blocks"], sealed.get("blocks", []))]
    return out
