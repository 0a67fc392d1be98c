"""The per-update feedback record, defined once.

Every writer of feedback values derives its layout from :data:`FIELDS`: the journal
(``feedback.f64``), the recorder, the LSL feedback outlet, replay's ``feedback.tsv`` and the
BDF's extra signals. A field added here appears in all of them, in the same order.

A record is a row of float64 values (booleans as 0/1), one per column; per-target fields
expand to one column per target. :func:`record_dtype` gives the same layout as a numpy
structured dtype, so a ``(n_updates, n_columns)`` float64 array and a structured array of
records are two views of the same bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .state import FeedbackState


@dataclass(frozen=True)
class Field:
    """One value of the record.

    Attributes
    ----------
    column : str
        Column name; per-target fields hold ``{t}`` where the target goes (``"si_{t}"``).
    attr : str
        The :class:`~neurofeed.core.state.FeedbackState` attribute it is read from.
    unit : str
        Unit ("" for flags and the 0..1 bar).
    range : tuple of float
        Physical range of the BDF signal (values outside are clipped there, never elsewhere).
    per_target : bool
        True when ``attr`` is an array with one value per target.
    label : str
        The BDF signal's name when ``column`` is too long for it (at most 11 characters after
        the target: the label is ``MISC <name>`` in 16); "" = ``column``.
    """

    column: str
    attr: str
    unit: str = ""
    range: tuple = (0.0, 1.0)
    per_target: bool = False
    label: str = ""


SI_RANGE = (-5.0, 5.0)  # log10 ratio: ±5 decades is far beyond any physiological change
# The record, in column order. ``sample_index`` first (the update's place on the sample
# timeline), ``si_combined`` second: the LSL outlet drops ``sample_index`` so its first
# channel is ``si_combined`` (the unsmoothed combined SI). Fields whose attribute this
# version of FeedbackState lacks (e.g. ``si_bar`` before the engine publishes it) are
# left out of the layout rather than written as NaN.
FIELDS: tuple[Field, ...] = (
    Field("sample_index", "sample_index", "sample", (0.0, 1e9)),
    Field("si_combined", "si_combined", "log10 ratio", SI_RANGE),
    Field("threshold", "threshold", "log10 ratio", SI_RANGE),
    Field("reward", "reward"),
    Field("gated", "gated"),
    Field("feedback", "feedback"),
    Field("feedback_on", "feedback_on"),
    Field("si_bar", "si_bar", "log10 ratio", SI_RANGE),
    Field("live_feedback", "live_feedback", label="live_fb"),  # the participant's own feedback (a yoked sham shows another's)
    Field("live_reward", "live_reward"),
    Field("si_{t}", "si", "log10 ratio", SI_RANGE, per_target=True),
    Field("power_{t}_uv2", "power_uv2", "uV^2", (0.0, 1e6), per_target=True, label="power_{t}"),
)
NOT_STREAMED = ("sample_index",)  # LSL carries its own timestamp; a float32 sample count would lose precision
BDF_TYPE = "MISC "  # the BDF label's type prefix (EDF+ "type name"; MNE's infer_types reads it as misc)
BDF_LABEL_LEN = 16  # an EDF/BDF signal label is 16 ASCII characters


def active_fields() -> list[Field]:
    """The fields of :data:`FIELDS` that :class:`FeedbackState` carries (read at call time)."""
    have = set(FeedbackState.__dataclass_fields__)
    return [f for f in FIELDS if f.attr in have]


def record_columns(targets) -> list[str]:
    """Column names of the record for these targets, in order."""
    return [f.column.format(t=t) for f in active_fields() for t in (targets if f.per_target else (None,))]


def record_fields(targets) -> list[tuple[str, Field]]:
    """``(column, field)`` for every column, in order (units and ranges per column)."""
    return [(f.column.format(t=t), f) for f in active_fields() for t in (targets if f.per_target else (None,))]


def field_of(column: str) -> Field | None:
    """The field a column belongs to (``"si_C3"`` -> the ``si_{t}`` field), or None if it is not a
    record column. Also reads the BDF's names for it (:func:`bdf_label`): ``"MISC si_C3"``, and
    ``"si_C3"`` / ``"live_fb"`` as MNE names them with ``infer_types=True``; a name cut to the
    label's 16 characters matches the start of a column."""
    cut = len(column) == BDF_LABEL_LEN
    if column.upper().startswith(BDF_TYPE):
        column = column[len(BDF_TYPE):]
    cut = cut or len(column) == BDF_LABEL_LEN - len(BDF_TYPE)
    for f in FIELDS:
        for name in {f.column, f.label or f.column}:
            if not f.per_target:
                if column == name or (cut and name.startswith(column)):
                    return f
            else:
                pre, post = name.split("{t}")
                if column.startswith(pre) and len(column) > len(pre) + len(post) and (column.endswith(post) or cut):
                    return f
    return None


def bdf_label(column: str) -> str:
    """The BDF signal label of a record column: ``MISC `` + its name (the field's short ``label``
    where the column is long), cut to 16 characters (``"MISC si_combined"``, ``"MISC live_fb"``,
    ``"MISC power_C3"``)."""
    f = field_of(column)
    name = column
    if f is not None and f.label:
        if f.per_target:
            pre, post = f.column.split("{t}")
            name = f.label.format(t=column[len(pre):len(column) - len(post)] if column.endswith(post) else column)
        else:
            name = f.label
    return (BDF_TYPE + name)[:BDF_LABEL_LEN]


def record_dtype(targets) -> np.dtype:
    """The record as a numpy structured dtype (all float64, same byte layout as a row)."""
    return np.dtype([(c, np.float64) for c in record_columns(targets)])


def new_row(targets) -> np.ndarray:
    """A preallocated row (float64, one value per column) for :func:`state_to_row`."""
    return np.zeros(len(record_columns(targets)))


def state_to_row(state, row: np.ndarray, fields: list[Field] | None = None) -> np.ndarray:
    """Fill ``row`` with ``state``'s values in record order and return it.

    Parameters
    ----------
    state : FeedbackState
    row : ndarray
        Shape (n_columns,), float64 (or float32); or a structured array of :func:`record_dtype`
        of shape () or (1,) (filled through its float64 view).
    fields : list of Field, optional
        ``active_fields()``, passed by writers that fill many rows so it is not recomputed.
    """
    if row.dtype.names is not None:
        row.reshape(1).view(np.float64)[:] = state_to_row(state, np.zeros(len(row.dtype.names)), fields)
        return row
    i = 0
    k = len(state.targets)
    for f in fields if fields is not None else active_fields():
        v = getattr(state, f.attr)
        if f.per_target:
            row[i:i + k] = v
            i += k
        else:
            row[i] = v
            i += 1
    return row


def as_records(rows: np.ndarray, columns) -> np.ndarray:
    """A ``(n_updates, n_columns)`` float64 array as a structured array (a view, no copy)."""
    rows = np.ascontiguousarray(rows, dtype=np.float64).reshape(-1, len(columns))
    return rows.view(np.dtype([(c, np.float64) for c in columns])).reshape(-1)


def _fmt(v: float) -> str:
    if math.isnan(v):
        return "nan"
    if float(v).is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.6g}"


def record_table(rows: np.ndarray, columns, sfreq: float) -> str:
    """Records as tab-separated text (what replay writes to ``feedback.tsv``).

    Parameters
    ----------
    rows : ndarray, shape (n_updates, n_columns), float64
    columns : list of str
        The record's columns (``record_columns(targets)`` or a journal's ``columns``).
    sfreq : float
        Sampling rate (Hz), for the first column ``time_s`` = ``sample_index / sfreq``.

    Returns
    -------
    str
        A header line ``time_s`` + the columns, then one line per update; flags and counts
        are written as integers, other values with 6 significant digits, NaN as ``nan``.
    """
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, len(columns))
    t = rows[:, list(columns).index("sample_index")] / float(sfreq)
    lines = ["\t".join(["time_s", *columns])]
    lines += ["\t".join([f"{ti:.6f}", *map(_fmt, r)]) for ti, r in zip(t, rows)]
    return "\n".join(lines) + "\n"
