"""Replay of a dyad session folder: both journals bit-exact, and the coupling recomputed from them.

Each person's journal is replayed through the live :class:`~neurofeed.live.processor.Processor`
(:func:`~neurofeed.analysis.replay.replay_journal`); after every chunk, that person's referenced targets
and state go to a fresh :class:`~neurofeed.dyad.monitor.DyadMonitor` exactly as the live sinks fed it
(:class:`~neurofeed.dyad.monitor.PersonInput` with the chain's weights at that chunk), aligned on the
recorded source timestamps. Since the monitor's output does not depend on how the two threads
interleaved live, the recomputed ``dyad.tsv`` equals the recorded one (to its 6 printed digits).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..core.errors import NeurofeedError
from .monitor import DyadMonitor, PersonInput, read_dyad_tsv

ROLES = ("a", "b")


def is_dyad_folder(path) -> bool:
    """True for a dyad session folder (``dyad.json`` beside the two people's session folders)."""
    return (Path(path) / "dyad.json").is_file()


def read_dyad_info(folder) -> dict:
    """``dyad.json`` of a dyad folder, with a one-line error when it is unreadable."""
    try:
        return json.loads((Path(folder) / "dyad.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise NeurofeedError(f"{folder}/dyad.json: unreadable ({err}).") from None


def person_folders(folder, info: dict | None = None) -> dict:
    """``{"a": Path, "b": Path}``: the two people's session folders of a dyad folder."""
    info = info or read_dyad_info(folder)
    out = {}
    for r in ROLES:
        name = (info.get("recordings") or {}).get(r)
        if not name or not (Path(folder) / name / "header.json").exists():
            raise NeurofeedError(f"{folder}: dyad.json names recording {name!r} for person {r}, which is not a "
                                 f"session folder there.")
        out[r] = Path(folder) / name
    return out


def replay_dyad(folder, out=None) -> dict:
    """Replay a dyad folder.

    Parameters
    ----------
    folder : path
        The dyad session folder.
    out : path, optional
        Where to write ``dyad.tsv`` (recomputed) and each person's ``<code>/feedback.tsv`` and
        ``summary.json``; nothing is written when None.

    Returns
    -------
    dict
        ``people``: per role the :func:`~neurofeed.analysis.replay.replay_journal` result plus
        ``bit_exact`` (bool); ``rows`` (n × 6, the recomputed coupling); ``recorded_rows``;
        ``max_abs_diff`` (largest difference from the recorded ``dyad.tsv`` over finite values,
        NaN where both are NaN counts as equal; None if the row counts differ).
    """
    from ..analysis.replay import replay_journal, write_outputs

    folder = Path(folder)
    info = read_dyad_info(folder)
    people = person_folders(folder, info)
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
    mon = DyadMonitor(info["sfreq"], tuple(info["band_hz"]), info["window_s"],
                      out=Path(out) if out is not None else None, update_every_s=info["update_s"])
    results = {}
    for role in ROLES:
        person = {}

        def feed(proc, data, ts, st, role=role, person=person):
            if "input" not in person:
                person["input"] = PersonInput(proc.chain, mon.sfreq)
            mon.add(role, person["input"](data), float(ts[0]), float(ts[-1]))
            mon.state(role, st.sample_index, st.si_combined)

        res = replay_journal(people[role], on_step=feed)
        res["bit_exact"] = bool(res["recorded"].shape == res["feedback"].shape
                                and np.array_equal(res["recorded"], res["feedback"], equal_nan=True))
        res["source"], res["mode"] = str(people[role]), "journal"
        if out is not None:
            write_outputs(res, Path(out) / people[role].name)
        results[role] = res
    rows = np.array(mon.rows, dtype=float).reshape(-1, len(DyadMonitor.COLUMNS))
    recorded = read_dyad_tsv(folder / "dyad.tsv") if (folder / "dyad.tsv").exists() else np.zeros((0, 6))
    diff = None
    if recorded.shape == rows.shape:
        # the recording holds 6 significant digits: compare what was printed
        printed = read_dyad_tsv(Path(out) / "dyad.tsv") if out is not None else rows
        both_nan = np.isnan(printed) & np.isnan(recorded)
        d = np.abs(np.where(both_nan, 0.0, printed - recorded))
        diff = float(np.nanmax(np.where(np.isnan(d), np.inf, d))) if d.size else 0.0
    return {"people": results, "rows": rows, "recorded_rows": recorded, "max_abs_diff": diff, "info": info}


def print_dyad_replay(folder, res: dict, stream=None) -> None:
    """What ``neurofeed replay <dyad folder>`` prints."""
    import sys

    stream = stream or sys.stdout
    info = res["info"]
    for role in ROLES:
        p = res["people"][role]
        stream.write(f"{info['roles'][role]}: {len(p['feedback'])} updates, "
                     f"{'bit-exact' if p['bit_exact'] else 'DIFFERS from the recording'}\n")
    d = res["max_abs_diff"]
    stream.write(f"coupling: {len(res['rows'])} rows recomputed (recorded {len(res['recorded_rows'])}); "
                 + ("row counts differ\n" if d is None else f"largest difference {d:.3g}\n"))
