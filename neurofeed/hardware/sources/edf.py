"""Recorded files (EDF/EDF+/BDF/BDF+/FIF through MNE) as a chunk source."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ...core.channels import normalize_names
from ...core.chunk import Chunk
from ...core.errors import SourceError
from .base import Source, rename_channels

if TYPE_CHECKING:  # MNE is imported where a file is read (it costs ~1 s at start-up)
    import mne

SUPPORTED = (".edf", ".bdf", ".fif", ".fif.gz")
#: channel types the --channel-types option and a BIDS channels.tsv may name (MNE's, lower case)
CHANNEL_TYPES = ("eeg", "eog", "ecg", "emg", "misc", "resp", "stim", "bio", "temperature", "gsr")
# labels of non-EEG channels in files that do not type them (EDF/BDF give MNE no types): the
# label's start, upper case -> MNE type. A 10-10 site never starts so.
_LABEL_TYPES = (("VEOG", "eog"), ("HEOG", "eog"), ("EOG", "eog"), ("ECG", "ecg"), ("EKG", "ecg"),
                ("EMG", "emg"), ("ACC", "misc"), ("RESP", "resp"), ("GSR", "gsr"), ("TEMP", "temperature"),
                ("STATUS", "stim"), ("TRIG", "stim"), ("STI", "stim"), ("MISC ", "misc"))
_UNIT_TO_UV = {"uv": 1.0, "µv": 1.0, "μv": 1.0, "mv": 1e3, "v": 1e6, "nv": 1e-3}


def parse_channel_types(text: str | None) -> dict:
    """``"EOG1=eog,ECG=ecg"`` -> ``{"EOG1": "eog", "ECG": "ecg"}``, with a one-line error."""
    out = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, _, kind = (x.strip() for x in part.partition("="))
        if not name or kind.lower() not in CHANNEL_TYPES:
            raise SourceError(f"--channel-types entry {part.strip()!r} must be CHANNEL=TYPE with TYPE one of "
                              f"{', '.join(CHANNEL_TYPES)} (e.g. EOG1=eog).")
        out[name] = kind.lower()
    return out


def bids_sidecars(path) -> tuple[dict, dict]:
    """A BIDS EEG file's own sidecars: (``*_eeg.json`` as a dict, ``*_channels.tsv`` name -> type,
    lower case); empty where the file is not named as BIDS or they are missing."""
    import csv
    import json

    path = Path(path)
    name = path.name.split(".")[0]
    if not name.endswith("_eeg"):
        return {}, {}
    meta, types = {}, {}
    js = path.with_name(name + ".json")
    if js.exists():
        try:
            meta = json.loads(js.read_text())
        except (OSError, ValueError) as err:
            raise SourceError(f"{js}: cannot read the BIDS sidecar ({err}).") from None
    tsv = path.with_name(name[: -len("_eeg")] + "_channels.tsv")
    if tsv.exists():
        with open(tsv, newline="") as f:
            types = {r["name"]: r["type"].lower() for r in csv.DictReader(f, delimiter="\t") if r.get("name")}
    return meta, types


def physical_range_uv(path, ch_names) -> float | None:
    """The largest physical range (|min| or |max|, in µV) of the named channels of an EDF/BDF
    file: the amplifier's range as the file declares it; None for other files or no such
    channels."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".edf", ".bdf"):
        return None
    from edfio import read_bdf, read_edf

    try:
        edf = (read_bdf if suffix == ".bdf" else read_edf)(path, lazy_load_data=True)
    except Exception:  # noqa: BLE001 - MNE has read the file; a header edfio refuses gives no range
        return None
    wanted = {n.upper() for n in ch_names}
    best = None
    for sig in edf.signals:
        label = sig.label.strip()
        short = label.split(" ", 1)[1] if label.upper().startswith("EEG ") else label
        if label.upper() not in wanted and short.upper() not in wanted and short.upper().rstrip(".") not in wanted:
            continue
        scale = _UNIT_TO_UV.get(sig.physical_dimension.strip().lower())
        if scale is None:
            continue
        r = max(abs(sig.physical_min), abs(sig.physical_max)) * scale
        best = r if best is None else max(best, r)
    return best


def read_raw(path) -> "mne.io.BaseRaw":
    """Read an EDF/BDF/FIF file with MNE, EEG channels only, names normalised to 10-10.

    Raises :class:`SourceError` (one line naming the file) for a missing, empty, truncated
    or corrupt file.
    """
    import mne

    path = Path(path)
    if not path.exists():
        raise SourceError(f"{path}: no such file.")
    if not str(path).lower().endswith(SUPPORTED):
        raise SourceError(f"{path}: unsupported file type; expected one of {', '.join(SUPPORTED)}.")
    if path.stat().st_size == 0:
        raise SourceError(f"{path}: the file is empty.")
    try:
        raw = mne.io.read_raw(path, preload=True, verbose="error")
    except Exception as err:  # MNE raises many types for corrupt headers
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SourceError(f"{path}: cannot read as {path.suffix[1:].upper()}: {msg}") from None
    if raw.n_times == 0:
        raise SourceError(f"{path}: the file holds no samples.")
    picks = [i for i, t in enumerate(raw.get_channel_types()) if t in ("eeg", "misc", "emg", "eog")]
    raw.pick(picks)
    mapping = dict(zip(raw.ch_names, normalize_names(raw.ch_names)))
    if len(set(mapping.values())) == len(mapping):
        raw.rename_channels(mapping)
    return raw


def file_channel_types(raw, path, overrides: dict | None = None) -> list[str]:
    """Each channel's type (MNE's, lower case): ``overrides`` (``--channel-types``), else the BIDS
    ``channels.tsv``, else the file's own (FIF) where it tells other than EEG, else the label
    (``EOG…``, ``ECG…``, ``EMG…``: EDF/BDF carry no types), else ``"eeg"``."""
    _, bids = bids_sidecars(path)
    by_upper = {k.upper(): v for k, v in {**bids, **(overrides or {})}.items()}
    out = []
    for name, t in zip(raw.ch_names, raw.get_channel_types()):
        kind = by_upper.get(name.upper())
        if kind is None and t != "eeg":
            kind = t
        if kind is None:
            kind = next((k for pre, k in _LABEL_TYPES if name.upper().startswith(pre)), "eeg")
        out.append(kind)
    return out


def file_line_freq(raw, path) -> tuple[float | None, str]:
    """The mains frequency a file declares and where it says so: BIDS ``PowerLineFrequency``
    (its ``*_eeg.json``), else MNE's ``info["line_freq"]`` (FIF); ``(None, "")`` when it does not."""
    meta, _ = bids_sidecars(path)
    v = meta.get("PowerLineFrequency")
    if isinstance(v, (int, float)) and v > 0:
        return float(v), "BIDS PowerLineFrequency"
    v = raw.info.get("line_freq")
    if v:
        return float(v), "the file's line_freq"
    return None, ""


class FileSource(Source):
    """Replay a recorded file in live-sized chunks, at real time or as fast as possible.

    Parameters
    ----------
    path : str or Path
    chunk_size : int, optional
        Samples per chunk; default ``round(0.04 * sfreq)`` (10 at 250 Hz, as live).
    realtime : bool
        Pace chunks at the recording's rate (True) or hand them over at once (False).
    range_uv : float, optional
        Amplifier range; default the largest physical range the file declares for its EEG
        channels (EDF/BDF headers), else 1.05 × its largest sample (FIF).
    channel_map : dict, optional
        File channel name (normalised) -> 10-10 name, as ``--channel-map``.
    channel_types : dict, optional
        Channel name -> type (``--channel-types``), over the file's own (:func:`file_channel_types`).

    Attributes
    ----------
    ch_types : list of str
        Each channel's type (``"eeg"``, ``"eog"``, ``"ecg"``, ...).
    line_freq, line_freq_from : float or None, str
        The mains frequency the file declares and where (:func:`file_line_freq`).
    """

    def __init__(self, path, chunk_size=None, realtime=False, range_uv=None, channel_map=None, channel_types=None):
        self.path = Path(path)
        raw = read_raw(self.path)
        self.ch_types = file_channel_types(raw, self.path, channel_types)
        self.line_freq, self.line_freq_from = file_line_freq(raw, self.path)
        self.sfreq = float(raw.info["sfreq"])
        self.ch_names = rename_channels(raw.ch_names, channel_map, f"file {self.path.name}")
        self.data = np.ascontiguousarray(raw.get_data() * 1e6)  # V -> µV
        self.annotations = [(float(a["onset"]), float(a["duration"]), str(a["description"]))
                            for a in raw.annotations]
        self.chunk_size = int(chunk_size or max(1, round(0.04 * self.sfreq)))
        self.realtime = realtime
        eeg = [i for i, t in enumerate(self.ch_types) if t == "eeg"] or list(range(len(self.ch_types)))
        self.range_uv = float(range_uv or physical_range_uv(self.path, [raw.ch_names[i] for i in eeg])
                              or max(1.0, float(np.nanmax(np.abs(self.data[eeg]))) * 1.05))
        self.name = f"file:{self.path.name}"
        self._pos = 0
        self._t0_ns = None
        self.finished = False

    def start(self):
        self._t0_ns = time.perf_counter_ns()

    def read(self) -> Chunk | None:
        if self._t0_ns is None:
            self.start()
        n_total = self.data.shape[1]
        if self._pos >= n_total:
            self.finished = True
            if self.realtime:
                self.nap(0.001)
            return None
        n = min(self.chunk_size, n_total - self._pos)
        if self.realtime:
            due = self._t0_ns + int((self._pos + n) * 1e9 / self.sfreq)
            if time.perf_counter_ns() < due:
                self.nap(max(0.0, (due - time.perf_counter_ns()) / 1e9))
                return None
        start = self._pos
        self._pos += n
        data = self.data[:, start:self._pos]
        ts = (start + np.arange(n)) / self.sfreq
        return Chunk(data, ts, time.perf_counter_ns(), start)
