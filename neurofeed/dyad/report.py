"""Report of a dyad session folder: the coupling over time and both people's SI.

Written by ``neurofeed report <dyad folder>``: ``coupling.png`` (coupling index, AEC and PLV
over time, the blocks shaded, and the simulated partner mode's scripted coupled windows
hatched), ``si.png`` (each person's combined SI), a table of mean coupling per block, and each
person's own session report in ``<out>/<code>/``.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from ..analysis.report import html_page, html_table, label_si_axes, pyplot, save_figure, session_report, shade_blocks
from ..core.errors import NeurofeedError
from .monitor import read_dyad_tsv
from .replay import ROLES, person_folders, read_dyad_info


def _blocks(person_folder) -> list[dict]:
    from ..recording.journal import read_journal

    return (read_journal(person_folder).sidecar or {}).get("blocks", [])


def dyad_report(folder, out=None) -> Path:
    """HTML report of a dyad folder (see the module docstring); returns ``index.html``."""
    plt = pyplot()
    folder = Path(folder)
    info = read_dyad_info(folder)
    people = person_folders(folder, info)
    if not (folder / "dyad.tsv").exists():
        raise NeurofeedError(f"{folder}: no dyad.tsv (the coupling was not recorded).")
    rows = read_dyad_tsv(folder / "dyad.tsv")
    out = Path(out or folder / "report")
    out.mkdir(parents=True, exist_ok=True)
    blocks = _blocks(people["a"])
    _coupling_figure(rows, blocks, info, out / "coupling.png", plt)
    _si_figure(rows, blocks, info, out / "si.png", plt)
    table = _block_table(rows, blocks, info)
    links = []
    for role in ROLES:
        code = info["roles"][role]
        session_report(people[role], out / code)
        links.append(f'<a href="{html.escape(code)}/index.html">{html.escape(code)}</a>')
    sections = [("Dyad", _dyad_head(info, rows, links)), ("Coupling over time", '<img src="coupling.png">'),
                ("Each person's SI", '<img src="si.png">'),
                ("Per block", html_table(table, list(table[0]) if table else []))]
    return html_page(f"neurofeed dyad report — {folder.name}", sections, out / "index.html")


def _shade(ax, blocks: list[dict]) -> None:
    """The blocks shaded by kind, named by their labels (the session report's shading, lighter)."""
    shade_blocks(ax, blocks, alpha=0.5, name=lambda b: b["label"])


def _coupling_figure(rows: np.ndarray, blocks: list[dict], info: dict, path: Path, plt) -> None:
    """Coupling index, AEC and PLV over the aligned dyad time (s), the blocks shaded, and the simulated
    partner mode's scripted coupled windows marked along the bottom."""
    t = rows[:, 0]
    truth = (info.get("ground_truth") or {}).get("coupled_windows_s") or []
    fig, ax = plt.subplots(figsize=(11, 3.6))
    _shade(ax, blocks)
    for i, (a, b) in enumerate(w for w in truth if len(t) and w[0] < t[-1]):
        ax.axvspan(a, b, ymin=0.0, ymax=0.06, color="#6c3483", alpha=0.8, lw=0,
                   label="scripted coupling (simulated)" if i == 0 else None)
    ax.plot(t, rows[:, 3], color="#1e8449", lw=1.6, label="coupling index")
    ax.plot(t, rows[:, 1], color="#1f4e79", lw=0.8, label="AEC")
    ax.plot(t, rows[:, 2], color="#d35400", lw=0.8, label="PLV")
    ax.set_ylim(-0.3, 1.05)
    if len(t):
        ax.set_xlim(0, t[-1])
    ax.set_xlabel("s (aligned dyad time)")
    ax.set_ylabel(f"over the last {info['window_s']:g} s")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, plt)


def _si_figure(rows: np.ndarray, blocks: list[dict], info: dict, path: Path, plt) -> None:
    """Each person's combined SI over the aligned dyad time, the blocks shaded."""
    t = rows[:, 0]
    fig, ax = plt.subplots(figsize=(11, 3.0))
    _shade(ax, blocks)
    for c, role, colour in ((4, "a", "#1f4e79"), (5, "b", "#d35400")):
        ax.plot(t, rows[:, c], lw=0.8, color=colour, label=f"{info['roles'][role]} SI")
    ax.axhline(0, color="#888", lw=0.8)
    label_si_axes(ax, "s (aligned dyad time)")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, plt)


def _block_table(rows: np.ndarray, blocks: list[dict], info: dict) -> list[dict]:
    """Per block: its span (s) and the mean coupling, AEC, PLV and each person's SI over it."""
    t = rows[:, 0]
    table = []
    for b in blocks:
        sel = (t >= b["start_s"]) & (t < b["end_s"])
        mean = lambda c: float(np.nanmean(rows[sel, c])) if sel.any() and np.isfinite(rows[sel, c]).any() else None  # noqa: E731
        table.append({"block": b["label"], "kind": b["kind"], "start (s)": b["start_s"], "end (s)": b["end_s"],
                      "coupling": mean(3), "AEC": mean(1), "PLV": mean(2),
                      f"SI {info['roles']['a']}": mean(4), f"SI {info['roles']['b']}": mean(5)})
    return table


def _dyad_head(info: dict, rows: np.ndarray, links: list[str]) -> str:
    """The report's first section: the two people, the protocol, the links to each person's own
    report, what was measured, and the session's mean coupling and alignment."""
    al = info.get("alignment") or {}
    c = info.get("coupling") or {}
    cols = ["mean coupling", "mean AEC", "mean PLV", "lead dropped (samples)", "relative clock drift (s)"]
    return (f"<p>dyad <b>{html.escape(info['roles']['a'])}</b> + <b>{html.escape(info['roles']['b'])}</b> · "
            f"protocol <b>{html.escape(str(info.get('protocol')))}</b> · {len(rows)} coupling values · each person's "
            f"own report: {' · '.join(links)}</p><p>{html.escape(str(info.get('measures', '')))}</p>"
            + html_table([{"mean coupling": c.get("mean_coupling"), "mean AEC": c.get("mean_aec"),
                           "mean PLV": c.get("mean_plv"), "lead dropped (samples)": str(al.get("lead_dropped_samples")),
                           "relative clock drift (s)": al.get("relative_drift_s")}], cols))
