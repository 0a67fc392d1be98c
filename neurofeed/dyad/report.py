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

from ..analysis.report import KIND_COLOURS, html_page, html_table, pyplot, session_report
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
    truth = (info.get("ground_truth") or {}).get("coupled_windows_s") or []
    t = rows[:, 0]

    def shade(ax):
        for b in blocks:
            ax.axvspan(b["start_s"], b["end_s"], color=KIND_COLOURS.get(b["kind"], "#eee"), alpha=0.5, lw=0)
            ax.text(b["start_s"], 1.0, b["label"], transform=ax.get_xaxis_transform(), fontsize=7, va="bottom")

    fig, ax = plt.subplots(figsize=(11, 3.6))
    shade(ax)
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
    fig.savefig(out / "coupling.png", dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(11, 3.0))
    shade(ax)
    for c, role, colour in ((4, "a", "#1f4e79"), (5, "b", "#d35400")):
        ax.plot(t, rows[:, c], lw=0.8, color=colour, label=f"{info['roles'][role]} SI")
    ax.axhline(0, color="#888", lw=0.8)
    ax.set_xlabel("s (aligned dyad time)")
    ax.set_ylabel("log10(power / baseline)")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "si.png", dpi=110)
    plt.close(fig)
    table = []
    for b in blocks:
        sel = (t >= b["start_s"]) & (t < b["end_s"])
        mean = lambda c: float(np.nanmean(rows[sel, c])) if sel.any() and np.isfinite(rows[sel, c]).any() else None  # noqa: E731
        table.append({"block": b["label"], "kind": b["kind"], "start (s)": b["start_s"], "end (s)": b["end_s"],
                      "coupling": mean(3), "AEC": mean(1), "PLV": mean(2),
                      f"SI {info['roles']['a']}": mean(4), f"SI {info['roles']['b']}": mean(5)})
    links = []
    for role in ROLES:
        code = info["roles"][role]
        session_report(people[role], out / code)
        links.append(f'<a href="{html.escape(code)}/index.html">{html.escape(code)}</a>')
    al = info.get("alignment") or {}
    c = info.get("coupling") or {}
    head = (f"<p>dyad <b>{html.escape(info['roles']['a'])}</b> + <b>{html.escape(info['roles']['b'])}</b> · protocol "
            f"<b>{html.escape(str(info.get('protocol')))}</b> · {len(rows)} coupling values · each person's own report: "
            f"{' · '.join(links)}</p><p>{html.escape(str(info.get('measures', '')))}</p>"
            + html_table([{"mean coupling": c.get("mean_coupling"), "mean AEC": c.get("mean_aec"),
                       "mean PLV": c.get("mean_plv"), "lead dropped (samples)": str(al.get("lead_dropped_samples")),
                       "relative clock drift (s)": al.get("relative_drift_s")}],
                     ["mean coupling", "mean AEC", "mean PLV", "lead dropped (samples)", "relative clock drift (s)"]))
    sections = [("Dyad", head), ("Coupling over time", '<img src="coupling.png">'),
                ("Each person's SI", '<img src="si.png">'),
                ("Per block", html_table(table, list(table[0]) if table else []))]
    return html_page(f"neurofeed dyad report — {folder.name}", sections, out / "index.html")
