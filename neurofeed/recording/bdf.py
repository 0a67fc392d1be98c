"""Turn a session journal into a BDF+ file with edfio (used at close and by ``recover``)."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np

from ..errors import RecordingError
from .journal import SIDECAR, read_journal

# Extra signals (sample-and-hold of the per-update feedback values): label, column, range.
FEEDBACK_SIGNALS = (("SI", "si_combined", (-5.0, 5.0)), ("Threshold", "threshold", (-5.0, 5.0)),
                    ("Reward", "reward", (0.0, 1.0)), ("Feedback", "feedback", (0.0, 1.0)))


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


def write_bdf(folder, out_path=None, recovered: bool = False) -> Path:
    """Write ``<folder>/<folder name>.bdf`` from the journal; returns its path.

    EEG at 24 bits over ± the board's range (quantisation step ``2 * range / 2**24``, e.g.
    0.022 µV for a Cyton), the feedback values as extra signals and every event as an
    EDF+ annotation. The header carries the participant code only.
    """
    from edfio import Bdf, BdfSignal, EdfAnnotation, Patient, Recording

    j = read_journal(folder)
    folder = j.path
    sfreq = j.sfreq
    rec = record_samples(sfreq)
    n = (j.data.shape[1] // rec) * rec  # whole data records only
    if n == 0:
        raise RecordingError(f"{folder}: the journal holds less than one data record ({rec} samples); nothing to write.")
    rng = float(j.header["range_uv"])
    signals = [BdfSignal(np.clip(j.data[i, :n], -rng, rng), sfreq, label=name[:16], transducer_type="EEG electrode",
                         physical_dimension="uV", physical_range=(-rng, rng))
               for i, name in enumerate(j.ch_names)]
    cols = j.columns
    for label, col, (lo, hi) in FEEDBACK_SIGNALS:
        values = hold_feedback(j.feedback, cols.index(col), n) if len(j.feedback) else np.zeros(n)
        signals.append(BdfSignal(np.clip(values, lo, hi), sfreq, label=label, physical_range=(lo, hi)))
    end_s = n / sfreq
    annotations = [EdfAnnotation(e["onset_s"], e["duration_s"] or None, e["text"][:120])
                   for e in j.events if e["onset_s"] < end_s]
    if recovered:
        annotations.append(EdfAnnotation(end_s, None, "recovered: recording ended unexpectedly"))
    started = dt.datetime.fromisoformat(j.header.get("started", "2000-01-01T00:00:00"))
    bdf = Bdf(signals, patient=Patient(code=j.header.get("participant", "X")),
              recording=Recording(startdate=started.date(), additional=(f"neurofeed",)),
              starttime=started.time().replace(microsecond=0), data_record_duration=rec / sfreq,
              annotations=annotations)
    out = Path(out_path) if out_path else folder / f"{folder.name}.bdf"
    tmp = out.with_suffix(".bdf.part")
    bdf.write(tmp)
    tmp.replace(out)
    if recovered and not (folder / SIDECAR).exists():
        (folder / SIDECAR).write_text(json.dumps(dict(j.header, recovered=True, samples=int(n)), indent=1))
    return out


def recover(path) -> Path:
    """Turn what a killed session left into a valid BDF+ (loses at most the unsynced last second)."""
    return write_bdf(path, recovered=True)
