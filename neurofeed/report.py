"""Session, replay and participant reports (HTML + PNG figures), and BIDS export."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from .errors import NeurofeedError
from .recording.journal import is_journal, read_journal

KIND_COLOURS = {"exploration": "#8fb8de", "integration": "#9fd3a8", "consolidation": "#e6e1d3", "action": "#f2c48d"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _page(title: str, sections: list[tuple[str, str]], out: Path) -> Path:
    body = "\n".join(f"<h2>{html.escape(h)}</h2>\n{content}" for h, content in sections)
    out.write_text(f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}} img{{max-width:100%}}</style></head>
<body><h1>{html.escape(title)}</h1><p><i>neurofeed is a research tool, not a medical device.</i></p>{body}</body></html>""")
    return out


def _table(rows: list[dict], cols: list[str]) -> str:
    def cell(v):
        if isinstance(v, float):
            return "—" if np.isnan(v) else f"{v:.3f}"
        return html.escape("—" if v is None else str(v))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{cell(r.get(c))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def session_report(folder, out=None) -> Path:
    """Report of one session folder: SI over time with blocks and threshold, per-block SI and
    reward by kind, baseline vs training spectra, gated time, latency."""
    from scipy import signal

    from .dsp.spatial import spatial_weights

    plt = _plt()
    j = read_journal(folder)
    side = j.sidecar or {}
    out = Path(out or Path(j.path) / "report")
    out.mkdir(parents=True, exist_ok=True)
    cols = {c: i for i, c in enumerate(j.columns)}
    fb = j.feedback
    t = fb[:, 0] / j.sfreq
    blocks = side.get("blocks", [])
    fig, ax = plt.subplots(figsize=(11, 3.6))
    for b in blocks:
        ax.axvspan(b["start_s"], b["end_s"], color=KIND_COLOURS.get(b["kind"], "#eee"), alpha=0.6, lw=0)
        ax.text(b["start_s"], 1.0, b["label"], transform=ax.get_xaxis_transform(), fontsize=7, va="bottom")
    ax.plot(t, fb[:, cols["si_combined"]], lw=0.8, color="#1f4e79", label="SI (combined)")
    ax.plot(t, fb[:, cols["threshold"]], lw=1.2, ls="--", color="#d35400", label="threshold")
    rew = fb[:, cols["reward"]] > 0
    ax.plot(t[rew], np.full(rew.sum(), ax.get_ylim()[0]), "|", color="#27ae60", ms=6, label="reward")
    ax.set_xlabel("s")
    ax.set_ylabel("log10(power / baseline)")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "si_over_time.png", dpi=110)
    plt.close(fig)
    # per-block mean SI and reward rate, grouped by kind
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    order = ["exploration", "integration", "consolidation", "action"]
    for k_i, kind in enumerate(order):
        bs = [b for b in blocks if b["kind"] == kind and b.get("si_pooled") is not None]
        for j_i, b in enumerate(bs):
            x = k_i + (j_i - (len(bs) - 1) / 2) * 0.15
            axes[0].bar(x, float(np.mean(b["si_pooled"])), width=0.13, color=KIND_COLOURS[kind], edgecolor="#555")
            if b.get("reward_rate") is not None:
                axes[1].bar(x, 100 * b["reward_rate"], width=0.13, color=KIND_COLOURS[kind], edgecolor="#555")
    for a, lab in zip(axes, ("mean SI per block", "reward rate per block (%)")):
        a.set_xticks(range(4), order)
        a.set_title(lab)
        a.axhline(0, color="#888", lw=0.8)
    fig.tight_layout()
    fig.savefig(out / "blocks_by_kind.png", dpi=110)
    plt.close(fig)
    # baseline vs training spectra at the targets, with the protocol's reference
    targets = list(j.header["targets"])
    w = spatial_weights(j.ch_names, targets, j.header.get("reference", "raw"))
    x = w @ np.nan_to_num(j.data)
    fig, axes = plt.subplots(1, len(targets), figsize=(11, 3.2), squeeze=False)
    for kind, colour, label in (("exploration", "#1f77b4", "baseline / exploration"), ("integration", "#2ca02c", "training")):
        mask = np.zeros(x.shape[1], dtype=bool)
        for b in blocks:
            if b["kind"] == kind:
                mask[int(b["start_s"] * j.sfreq):int(b["end_s"] * j.sfreq)] = True
        if mask.sum() > j.sfreq:
            f, p = signal.welch(x[:, mask], fs=j.sfreq, nperseg=int(j.sfreq))
            for i, name in enumerate(targets):
                axes[0, i].semilogy(f, p[i], color=colour, label=label)
    for i, name in enumerate(targets):
        axes[0, i].set_xlim(2, 40)
        axes[0, i].axvspan(8, 13, color="#ddd", alpha=0.5)
        axes[0, i].set_title(f"{name} ({j.header.get('reference', 'raw')})")
        axes[0, i].set_xlabel("Hz")
        axes[0, i].legend(fontsize=8)
    axes[0, 0].set_ylabel("µV²/Hz")
    fig.tight_layout()
    fig.savefig(out / "spectra.png", dpi=110)
    plt.close(fig)
    timing = side.get("timing", {})
    lat = timing.get("sample_to_feedback_ms", {})
    rows = [{"block": b["label"], "kind": b["kind"], "start_s": b["start_s"], "end_s": b["end_s"],
             "mean SI": float(np.mean(b["si_pooled"])) if b.get("si_pooled") else None,
             "reward rate": b.get("reward_rate"), "gated_s": b.get("gated_s")} for b in blocks]
    sections = [
        ("Session", f"<p>participant <b>{html.escape(str(j.header.get('participant')))}</b> · protocol "
                    f"<b>{html.escape(str(j.header.get('protocol')))}</b> · {j.header.get('started', '')} · "
                    f"{j.data.shape[1] / j.sfreq:.0f} s · board {html.escape(str(j.header.get('source', {}).get('source')))}"
                    f" · estimator {html.escape(json.dumps(j.header.get('estimator')))}</p>"
                    f"<p>reward rate {side.get('reward_rate')} · gated time {side.get('gated_s', 0):.1f} s · "
                    f"baseline {html.escape(json.dumps(side.get('baseline_uv2')))}"
                    f"{' · <b>recovered after an interruption</b>' if side.get('recovered') else ''}</p>"),
        ("SI over time (blocks shaded by kind)", '<img src="si_over_time.png">'),
        ("Blocks by kind", '<img src="blocks_by_kind.png">' + _table(rows, list(rows[0]) if rows else [])),
        ("Baseline vs training spectra", '<img src="spectra.png">'),
        ("Latency", _table([{"p50 ms": lat.get("p50"), "p99 ms": lat.get("p99"), "max ms": lat.get("max"),
                             "compute p99 µs": timing.get("compute_us", {}).get("p99"),
                             "updates/s": timing.get("update_hz"), "dropped samples": side.get("dropped_samples")}],
                           ["p50 ms", "p99 ms", "max ms", "compute p99 µs", "updates/s", "dropped samples"])),
    ]
    return _page(f"neurofeed session report — {j.path.name}", sections, out / "index.html")


def replay_report(folder, out=None) -> Path:
    """Report of a replay output folder (``feedback.tsv`` + ``summary.json``)."""
    plt = _plt()
    folder = Path(folder)
    out = Path(out or folder / "report")
    out.mkdir(parents=True, exist_ok=True)
    summary = json.loads((folder / "summary.json").read_text())
    data = np.genfromtxt(folder / "feedback.tsv", delimiter="\t", names=True)
    fig, ax = plt.subplots(figsize=(11, 3.4))
    ax.plot(data["time_s"], data["si_combined"], lw=0.7, label="SI (combined)")
    ax.plot(data["time_s"], data["threshold"], ls="--", lw=1.0, label="threshold")
    ax.set_xlabel("s")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "si_over_time.png", dpi=110)
    plt.close(fig)
    conds = summary["conditions"]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    labels = list(conds)
    targets = list(next(iter(conds.values()))["si"]) if conds and isinstance(next(iter(conds.values()))["si"], dict) else []
    for i, tname in enumerate(targets):
        ax.bar(np.arange(len(labels)) + i * 0.35, [conds[c]["si"][tname] for c in labels], width=0.35, label=tname)
    ax.set_xticks(np.arange(len(labels)) + 0.175, labels)
    ax.axhline(0, color="#888", lw=0.8)
    ax.set_ylabel("SI vs baseline")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "conditions.png", dpi=110)
    plt.close(fig)
    rows = [{"condition": c, "segments": v["segments"], **{f"SI {k}": x for k, x in (v["si"] or {}).items()},
             "combined": v.get("combined")} for c, v in conds.items()]
    sections = [("SI over time", '<img src="si_over_time.png">'),
                ("Conditions", '<img src="conditions.png">' + _table(rows, list(rows[0]) if rows else [])),
                ("Summary", f"<pre>{html.escape(json.dumps({k: v for k, v in summary.items() if k != 'conditions'}, indent=1))}</pre>")]
    return _page(f"neurofeed replay report — {folder.name}", sections, out / "index.html")


def participant_report(folder, out=None) -> Path:
    """Progress across a participant's sessions: the spread of training SI per session, not
    only a trend (progress spirals: setbacks and returns are expected)."""
    plt = _plt()
    folder = Path(folder)
    sessions = sorted(p for p in folder.iterdir() if p.is_dir() and is_journal(p))
    if not sessions:
        raise NeurofeedError(f"{folder}: no neurofeed sessions inside.")
    out = Path(out or folder / "report")
    out.mkdir(parents=True, exist_ok=True)
    dists, rates, names = [], [], []
    for s in sessions:
        j = read_journal(s)
        cols = {c: i for i, c in enumerate(j.columns)}
        on = j.feedback[:, cols["feedback_on"]] > 0
        si = j.feedback[on, cols["si_combined"]]
        dists.append(si[np.isfinite(si)] if si.size else np.zeros(1))
        rates.append(100 * float(np.mean(j.feedback[on, cols["reward"]])) if on.any() else np.nan)
        names.append(s.name[:15])
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    axes[0].violinplot(dists, showmedians=True)
    axes[0].plot(range(1, len(dists) + 1), [np.median(d) for d in dists], "o-", color="#555", lw=0.8)
    axes[0].set_xticks(range(1, len(names) + 1), names, rotation=30, fontsize=7)
    axes[0].set_title("training SI per session (spread and median)")
    axes[0].axhline(0, color="#888", lw=0.8)
    axes[1].plot(range(1, len(rates) + 1), rates, "o-")
    axes[1].set_xticks(range(1, len(names) + 1), names, rotation=30, fontsize=7)
    axes[1].set_title("reward rate per session (%)")
    fig.tight_layout()
    fig.savefig(out / "progress.png", dpi=110)
    plt.close(fig)
    rows = [{"session": n, "median SI": float(np.median(d)), "IQR": float(np.subtract(*np.percentile(d, [75, 25]))),
             "reward %": r} for n, d, r in zip(names, dists, rates)]
    return _page(f"neurofeed progress — {folder.name}",
                 [("Progress across sessions", '<img src="progress.png">' + _table(rows, list(rows[0])))],
                 out / "index.html")


def make_report(path, out=None) -> Path:
    """Dispatch on what ``path`` is: a session folder, a replay output or a participant folder."""
    p = Path(path)
    if not p.exists():
        raise NeurofeedError(f"{p}: no such file or folder.")
    if is_journal(p):
        return session_report(p, out)
    if (p / "feedback.tsv").exists() and (p / "summary.json").exists():
        return replay_report(p, out)
    if p.is_dir() and any(is_journal(c) for c in p.iterdir() if c.is_dir()):
        return participant_report(p, out)
    raise NeurofeedError(f"{p}: not a session folder, a replay output (feedback.tsv + summary.json) or a "
                         f"participant folder.")


def export_bids(path, root, task="neurofeedback") -> Path:
    """Write a session's BDF into a BIDS dataset with mne-bids (feedback signals as misc)."""
    import mne
    from mne_bids import BIDSPath, write_raw_bids

    j = read_journal(path)
    bdfs = list(Path(j.path).glob("*.bdf"))
    if not bdfs:
        raise NeurofeedError(f"{j.path}: no BDF yet; run `neurofeed recover {j.path}` first.")
    raw = mne.io.read_raw_bdf(bdfs[0], verbose="error")
    raw.set_channel_types({c: "misc" for c in ("SI", "Threshold", "Reward", "Feedback") if c in raw.ch_names},
                          on_unit_change="ignore")
    sub = "".join(ch for ch in str(j.header.get("participant", "X")) if ch.isalnum())
    ses = Path(j.path).name.split("_")[0].replace("-", "")
    bp = BIDSPath(subject=sub, session=ses, task=task.replace("-", ""), root=root, datatype="eeg")
    write_raw_bids(raw, bp, overwrite=True, verbose=False)
    return bp.fpath
