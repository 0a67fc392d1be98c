"""Session, replay and participant reports (HTML + PNG figures), and BIDS export."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from ..core.errors import NeurofeedError
from ..dsp.responses import db_to_pct, mean_ci95, pct_to_db
from ..dsp.spectra import welch_psd
from ..recording.journal import is_journal, read_journal

KIND_COLOURS = {"exploration": "#8fb8de", "integration": "#9fd3a8", "consolidation": "#e6e1d3", "action": "#f2c48d"}


def pyplot():
    """matplotlib.pyplot on the Agg backend (reports draw to files, never to a screen)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def html_page(title: str, sections: list[tuple[str, str]], out: Path) -> Path:
    """Write a report page: ``title``, then each (heading, HTML) section; returns ``out``."""
    body = "\n".join(f"<h2>{html.escape(h)}</h2>\n{content}" for h, content in sections)
    out.write_text(f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}} img{{max-width:100%}}</style></head>
<body><h1>{html.escape(title)}</h1><p><i>neurofeed is a research tool, not a medical device.</i></p>{body}</body></html>""")
    return out


def html_table(rows: list[dict], cols: list[str]) -> str:
    """An HTML table of ``rows`` (dicts) in columns ``cols``: floats to 3 decimals, NaN and None as —."""
    def cell(v):
        if isinstance(v, (dict, list, tuple, np.ndarray)):
            raise TypeError(f"a table cell must be a scalar, not {type(v).__name__} ({v!r:.60})")
        if isinstance(v, (float, np.floating)):
            return "—" if np.isnan(v) else f"{v:.3f}"
        return html.escape("—" if v is None else str(v))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{cell(r.get(c))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def session_report(folder, out=None, unblind=None) -> Path:
    """Report of one session folder: SI over time with blocks and threshold, per-block SI and
    reward by kind, baseline vs training spectra, gated time, latency. The arm of a trial
    session (real or sham) shows as "blinded" unless ``unblind`` names the key file."""
    from ..live.sham import arm_of, is_blinded, unseal, unsealed_summary

    plt = pyplot()
    j = read_journal(folder)
    side = j.sidecar or {}
    arm = arm_of(j.header, unblind, j.path)
    out = Path(out or Path(j.path) / "report")
    out.mkdir(parents=True, exist_ok=True)
    cols = {c: i for i, c in enumerate(j.columns)}
    fb = j.feedback
    unsealed = None
    if unblind and is_blinded(j.header):  # the live values, from the sealed file
        unsealed = unseal(j.path, unblind)
        if unsealed["rows"].shape[1:] == fb.shape[1:]:
            fb = unsealed["rows"]
        side = unsealed_summary(side, unsealed["summary"])
    blocks = side.get("blocks", [])
    _session_si_figure(fb, cols, j.sfreq, blocks, out / "si_over_time.png", plt)
    _blocks_figure(blocks, out / "blocks_by_kind.png", plt)
    _spectra_figure(j, blocks, out / "spectra.png", plt)
    rows = _block_rows(blocks)
    sections = [
        ("Session", _session_head(j, side, arm)),
        ("SI over time (blocks shaded by kind)", '<img src="si_over_time.png">'),
        *([("Shown and live feedback (unblinded)", _shown_and_live(fb, cols, j.sfreq, out, plt))]
          if unsealed is not None else []),
        ("Blocks by kind", '<img src="blocks_by_kind.png">' + html_table(rows, list(rows[0]) if rows else [])),
        ("Baseline vs training spectra", '<img src="spectra.png">'),
        ("Latency (compute: chunk arrival → feedback published; the electrode-to-feedback delay, mostly the "
         "estimator's, is measured by `neurofeed bench latency`)", _latency_table(side)),
    ]
    return html_page(f"neurofeed session report — {j.path.name}", sections, out / "index.html")


def shade_blocks(ax, blocks: list[dict], alpha: float = 0.6, name=None) -> None:
    """Shade each block's span (s) on ``ax`` by its kind (:data:`KIND_COLOURS`) and write its name
    (``name(block)``, default :func:`_block_name`) at the top."""
    name = name or _block_name
    for b in blocks:
        ax.axvspan(b["start_s"], b["end_s"], color=KIND_COLOURS.get(b["kind"], "#eee"), alpha=alpha, lw=0)
        ax.text(b["start_s"], 1.0, name(b), transform=ax.get_xaxis_transform(), fontsize=7, va="bottom")


def label_si_axes(ax, xlabel: str = "s") -> None:
    """The axes of an SI-over-time plot: time (``xlabel``) and the SI's unit."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel("log10(power / baseline)")


def save_figure(fig, path: Path, plt, dpi: int = 110) -> None:
    """Write ``fig`` to ``path`` (PNG, ``dpi``) and close it."""
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def _session_si_figure(fb: np.ndarray, cols: dict, sfreq: float, blocks: list[dict], path: Path, plt) -> None:
    """The session's SI over time: the combined SI, the threshold and the rewards, blocks shaded by kind."""
    t = fb[:, 0] / sfreq
    fig, ax = plt.subplots(figsize=(11, 3.8), layout="constrained")
    shade_blocks(ax, blocks)
    ax.plot(t, fb[:, cols["si_combined"]], lw=0.8, color="#1f4e79", label="SI (combined)")
    ax.plot(t, fb[:, cols["threshold"]], lw=1.2, ls="--", color="#d35400", label="threshold")
    rew = fb[:, cols["reward"]] > 0
    ax.plot(t[rew], np.full(rew.sum(), ax.get_ylim()[0]), "|", color="#27ae60", ms=6, label="reward")
    label_si_axes(ax)
    fig.legend(loc="outside right upper", fontsize=8)  # outside the data
    save_figure(fig, path, plt)


#: the spectra compared: (block kind, colour, legend label)
SPECTRA_KINDS = (("exploration", "#1f77b4", "baseline / exploration"), ("integration", "#2ca02c", "training"))


def _spectra_figure(j, blocks: list[dict], path: Path, plt) -> None:
    """Baseline vs training spectra (Welch, 1-s segments, µV²/Hz) at the targets, with the protocol's
    reference; one panel per target, 2 to 40 Hz, the mu band shaded."""

    from ..dsp.spatial import spatial_weights

    targets = list(j.header["targets"])
    w = spatial_weights(j.ch_names, targets, j.header.get("reference", "raw"))
    x = w @ np.nan_to_num(j.data)
    fig, axes = plt.subplots(1, len(targets), figsize=(11, 3.4), squeeze=False, layout="constrained")
    shown: dict = {}  # target -> the spectra drawn between 2 and 40 Hz, for the axis limits
    for kind, colour, label in SPECTRA_KINDS:
        mask = np.zeros(x.shape[1], dtype=bool)
        for b in blocks:
            if b["kind"] == kind:
                mask[int(b["start_s"] * j.sfreq):int(b["end_s"] * j.sfreq)] = True
        if mask.sum() > j.sfreq:
            f, p = welch_psd(x[:, mask], j.sfreq, segment_s=1.0)
            band = (f >= 2) & (f <= 40)
            for i, name in enumerate(targets):
                axes[0, i].semilogy(f, p[i], color=colour, label=label)
                shown.setdefault(i, []).append(p[i][band])
    for i, name in enumerate(targets):
        axes[0, i].set_xlim(2, 40)
        lim = _robust_log_limits(shown.get(i))
        if lim is not None:
            axes[0, i].set_ylim(*lim)
        axes[0, i].axvspan(8, 13, color="#ddd", alpha=0.5)
        axes[0, i].set_title(f"{name} ({j.header.get('reference', 'raw')})")
        axes[0, i].set_xlabel("Hz")
    axes[0, 0].set_ylabel("µV²/Hz")
    handles, names = axes[0, 0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, names, loc="outside right upper", fontsize=8)
    save_figure(fig, path, plt)


def figures_table(first: dict, reward_rate, gated_s, baseline_uv2: dict) -> str:
    """One row of a session's figures: ``first`` (column -> value), the reward rate (a fraction,
    shown in %), the gated time (s) and the baseline power per target (µV²)."""
    base = baseline_uv2 or {}
    row = {**first, "reward rate (%)": None if reward_rate is None else 100 * reward_rate, "gated (s)": gated_s,
           **{f"baseline {t} (µV²)": v for t, v in base.items()}}
    return html_table([row], list(row))


def _session_head(j, side: dict, arm: str) -> str:
    """The report's first section: who, which protocol, when, how long, which board, the arm; the
    session's figures and the estimator's settings."""
    est = j.header.get("estimator") or {}
    est_rows = [{"estimator setting": k, "value": v if not isinstance(v, (dict, list, tuple)) else json.dumps(v)}
                for k, v in est.items()] if isinstance(est, dict) else [{"estimator setting": "name", "value": est}]
    return (f"<p>participant <b>{html.escape(str(j.header.get('participant')))}</b> · protocol "
            f"<b>{html.escape(str(j.header.get('protocol')))}</b> · {j.header.get('started', '')} · "
            f"{j.data.shape[1] / j.sfreq:.0f} s · board {html.escape(str(j.header.get('source', {}).get('source')))}"
            f"{' · <b>recovered after an interruption</b>' if side.get('recovered') else ''}"
            f" · arm <b>{html.escape(arm)}</b></p>"
            + figures_table({}, side.get("reward_rate"), side.get("gated_s"), side.get("baseline_uv2"))
            + html_table(est_rows, ["estimator setting", "value"]))


def _block_rows(blocks: list[dict]) -> list[dict]:
    """The blocks table: label, kind, direction trained, bar shown, span (s), mean SI, reward rate (%), gated (s)."""
    return [{"block": b["label"], "kind": b["kind"],
             "direction": DIRECTION_WORDS.get(b.get("direction"), b.get("direction")) if b["kind"] in TRAINING_KINDS
             else "—",
             "bar shown": "yes" if b.get("feedback", True) else "no", "start (s)": b["start_s"], "end (s)": b["end_s"],
             "mean SI (log10 ratio)": float(np.mean(b["si_pooled"])) if b.get("si_pooled") else None,
             "reward rate (%)": None if b.get("reward_rate") is None else 100 * b["reward_rate"],
             "gated (s)": b.get("gated_s")} for b in blocks]


def _latency_table(side: dict) -> str:
    """The session's compute latency (chunk arrival → feedback published, ms), compute time, update
    rate and dropped samples."""
    timing = side.get("timing", {})
    lat = timing.get("compute_to_publish_ms", timing.get("sample_to_feedback_ms", {}))  # older sidecars
    return html_table([{"p50 ms": lat.get("p50"), "p99 ms": lat.get("p99"), "max ms": lat.get("max"),
                        "compute p99 µs": timing.get("compute_us", {}).get("p99"),
                        "updates/s": timing.get("update_hz"), "dropped samples": side.get("dropped_samples")}],
                      ["p50 ms", "p99 ms", "max ms", "compute p99 µs", "updates/s", "dropped samples"])


#: what a block's direction rewards (``[protocol] direction``: up rewards more suppression)
DIRECTION_WORDS = {"up": "up (SI < thr)", "down": "down (SI > thr)"}
TRAINING_KINDS = ("integration", "action")  # the kinds that train a direction (with the bar, or transfer without)


def _block_name(b: dict) -> str:
    """A block's label with the direction it trains, where it trains one
    (``observe-hands up (SI < thr)``; a baseline or rest block is its label alone)."""
    d = b.get("direction")
    if not d or b.get("kind") not in TRAINING_KINDS:
        return str(b["label"])
    return f"{b['label']} {DIRECTION_WORDS.get(d, d)}"


def _blocks_figure(blocks: list[dict], path: Path, plt) -> None:
    """Mean SI and reward rate of every block in session order, each bar named with its block and
    direction, coloured by kind (legend outside the data)."""
    from matplotlib.patches import Patch

    fig, axes = plt.subplots(2, 1, figsize=(11, 5.2), sharex=True, layout="constrained")
    x = np.arange(len(blocks))
    colours = [KIND_COLOURS.get(b["kind"], "#ddd") for b in blocks]
    si = [float(np.mean(b["si_pooled"])) if b.get("si_pooled") is not None else np.nan for b in blocks]
    rate = [100 * b["reward_rate"] if b.get("reward_rate") is not None else np.nan for b in blocks]
    axes[0].bar(x, si, color=colours, edgecolor="#555")
    axes[1].bar(x, rate, color=colours, edgecolor="#555")
    axes[0].set_ylabel("mean SI (log10 ratio)")
    axes[1].set_ylabel("reward rate (%)")
    axes[0].axhline(0, color="#888", lw=0.8)
    axes[1].set_xticks(x, [_block_name(b).replace(" ", "\n", 1) for b in blocks], rotation=45 if len(blocks) > 8 else 0,
                       ha="right" if len(blocks) > 8 else "center", fontsize=7)
    kinds = [k for k in KIND_COLOURS if any(b["kind"] == k for b in blocks)]
    kinds += sorted({b["kind"] for b in blocks} - set(kinds))
    fig.legend([Patch(color=KIND_COLOURS.get(k, "#ddd")) for k in kinds], kinds, loc="outside right upper",
               fontsize=8, title="kind", title_fontsize=8)
    save_figure(fig, path, plt)


def _robust_log_limits(curves) -> tuple[float, float] | None:
    """Log-axis limits that show the data: the 1st to 99.5th percentile of the positive values
    drawn, widened by a factor of 2 each way (a stray near-zero bin does not empty the panel)."""
    if not curves:
        return None
    v = np.concatenate([np.asarray(c, dtype=float).ravel() for c in curves])
    v = v[np.isfinite(v) & (v > 0)]
    if not v.size:
        return None
    lo, hi = np.percentile(v, [1.0, 99.5])
    return lo / 2.0, hi * 2.0


def _shown_and_live(fb: np.ndarray, cols: dict, sfreq: float, out: Path, plt) -> str:
    """An unblinded report's section: what the participant was shown beside their own live
    feedback (equal in the real arm; a yoked sham shows another session's)."""
    t = fb[:, cols["sample_index"]] / sfreq
    on = fb[:, cols["feedback_on"]] > 0
    shown, live = fb[:, cols["feedback"]], fb[:, cols["live_feedback"]]
    fig, ax = plt.subplots(figsize=(11, 2.8), layout="constrained")
    ax.plot(t, shown, lw=0.8, color="#1f4e79", label="shown feedback")
    ax.plot(t, live, lw=0.8, color="#d35400", alpha=0.8, label="live feedback (own SI)")
    ax.set_xlabel("s")
    ax.set_ylabel("bar (0..1)")
    fig.legend(loc="outside right upper", fontsize=8)
    save_figure(fig, out / "shown_and_live.png", plt)
    rate = lambda col: 100 * float(np.mean(fb[on, cols[col]] > 0)) if on.any() else None  # noqa: E731
    differ = 100 * float(np.mean(shown[on] != live[on])) if on.any() else None
    return '<img src="shown_and_live.png">' + html_table(
        [{"shown reward (%)": rate("reward"), "live reward (%)": rate("live_reward"),
          "updates where shown ≠ live (%)": differ}],
        ["shown reward (%)", "live reward (%)", "updates where shown ≠ live (%)"])


ERD_WINDOW_S = (-1.0, 4.0)  # around each event onset
ERD_STEP_S = 0.04
ERD_SMOOTH_S = 0.2  # centred moving average of each trial's course, for display and the numbers
#: each trial's own pre-event interval, the default ERD reference (MNE's tfr baseline, mode "logratio"):
#: it ends 0.25 s before the onset so that neither the 0.2-s centred smoothing nor the estimator's
#: delay (feedback.tsv power is causal, ~0.1 s late) carries the event into it
ERD_BASELINE_S = (-1.0, -0.25)
ERD_LATE_S = (0.5, 4.0)  # the window of the per-trial numbers
ERD_BASELINES = ("pre-event", "session")
TFR_FREQS_HZ = np.arange(4.0, 36.0, 1.0)
_FLOOR_UV2 = 1e-12


def _replay_runs(folder: Path) -> list[Path]:
    """Replay output folders under ``folder`` (itself, or its sub-folders for a dataset)."""
    if (folder / "feedback.tsv").exists():
        return [folder]
    return sorted(d for d in folder.iterdir() if d.is_dir() and (d / "feedback.tsv").exists()
                  and (d / "summary.json").exists())


def erd_baseline_text(baseline: str, summaries: list[dict] | None = None) -> str:
    """What an ERD is relative to, for axis labels and tables."""
    if baseline == "pre-event":
        return f"each trial's pre-event {ERD_BASELINE_S[0]:g} to {ERD_BASELINE_S[1]:g} s"
    modes = sorted({s.get("mode", "?") for s in summaries or []})
    labels = sorted({str(s.get("baseline_label")) for s in summaries or []})
    froms = sorted({Path(s["baseline_from"]).name for s in summaries or [] if s.get("baseline_from")})
    where = f" of {', '.join(froms)}" if froms else ""
    return f"the session baseline ({', '.join(labels)} segments{where}, {', '.join(modes)} replay)"


def erd_trials(runs: list[Path], keys: list[dict] | None = None, baseline: str = "pre-event") -> tuple[np.ndarray, dict]:
    """Event-locked mu power per trial, as a ratio to a reference power.

    For every condition event (``summary.json`` ``events``) whose −1…+4 s window lies in the
    recording, the per-update mu power of ``feedback.tsv`` (the replay's own estimator) is
    interpolated onto a 0.04-s grid and smoothed with a centred 0.2-s moving average, then
    divided by the reference: with ``baseline="pre-event"`` (default) the geometric mean of the
    trial's own power over −1.0…−0.25 s (:data:`ERD_BASELINE_S`); with ``"session"`` the replay's
    baseline power (``baseline_uv2``, the SI's reference, also a geometric mean, so that the mean
    of 10·log10 of the ratio over a block is 10·SI dB).

    Parameters
    ----------
    runs : list of Path
        Replay output folders.
    keys : list of dict, optional
        Per run, label -> condition key (:func:`neurofeed.analysis.replay.condition_keys`); default the labels.
    baseline : {"pre-event", "session"}

    Returns
    -------
    t_s : ndarray, shape (n_times,)
        Seconds from the event onset.
    trials : dict
        ``trials[condition][target]`` → ndarray (n_trials, n_times): power / reference (> 0).
    """
    if baseline not in ERD_BASELINES:
        raise NeurofeedError(f"--erd-baseline {baseline!r} is not one of {', '.join(ERD_BASELINES)}.")
    t_s = np.arange(ERD_WINDOW_S[0], ERD_WINDOW_S[1] + ERD_STEP_S / 2, ERD_STEP_S)
    pre = (t_s >= ERD_BASELINE_S[0] - 1e-9) & (t_s <= ERD_BASELINE_S[1] + 1e-9)
    trials: dict = {}
    k = max(1, int(round(ERD_SMOOTH_S / ERD_STEP_S))) | 1  # odd, so the average is centred
    for i, run in enumerate(runs):
        summary = json.loads((run / "summary.json").read_text())
        key = (keys[i] if keys else None) or {}
        targets = list(summary.get("targets") or [])
        session_base = summary.get("baseline_uv2") or {}  # the geometric mean: the SI's B
        data = np.genfromtxt(run / "feedback.tsv", delimiter="\t", names=True)
        times = np.atleast_1d(data["time_s"])
        for ev in summary.get("events", []):
            t = ev["onset_s"] + t_s
            if len(times) < 2 or t[0] < times[0] or t[-1] > times[-1]:
                continue
            for target in targets:
                col = f"power_{target}_uv2"
                if col not in data.dtype.names:
                    continue
                p = np.interp(t, times, data[col])
                p = np.convolve(np.pad(p, k // 2, mode="edge"), np.ones(k) / k, mode="valid")
                # the geometric mean, as the session baseline B is: every number is then a mean of log
                # power minus a mean of log power, as the SI (an arithmetic mean would read ~1-2 dB higher
                # for the same signal, mu power being roughly log-normal)
                ref = 10 ** np.mean(np.log10(np.maximum(p[pre], _FLOOR_UV2))) if baseline == "pre-event" \
                    else session_base.get(target)
                if ref is None or not np.isfinite(ref) or ref <= 0 or not np.all(np.isfinite(p)):
                    continue
                cond = key.get(ev["label"], ev["label"])
                trials.setdefault(cond, {}).setdefault(target, []).append(np.maximum(p, _FLOOR_UV2) / ref)
    return t_s, {lab: {t: np.array(v) for t, v in d.items()} for lab, d in trials.items()}


def erd_figure(t_s, trials, out: Path, baseline_text: str = "", tasks: dict | None = None,
               pre_event: bool = True) -> dict:
    """``erd.png`` (mean ± 95 % CI per condition, one panel per target) and the numbers behind it.

    The statistic is each trial's log power ratio in dB, 10·log10(P / P_ref), where it is
    symmetric: the mean and its 95 % t-interval over trials are taken in dB and only then shown
    as percent (100·(10^(dB/10) − 1)), so no bound can fall below −100 %. The percent of the
    mean dB is the change of the trials' geometric mean power.

    Returns
    -------
    dict
        ``{"baseline": baseline_text, "units": ..., "conditions": {condition: {target: {"task",
        "n_trials", "mean_db_0.5_4s", "ci95_db_0.5_4s", "mean_pct_0.5_4s", "ci95_pct_0.5_4s", "t_s",
        "mean_db", "ci95_db_low", "ci95_db_high"}}}}`` (also written to ``erd.json``); the 0.5–4 s
        numbers are per trial the mean over the window of its dB course (a mean of log power
        against the reference, as the SI is), then mean and t-interval over trials.
        ``pre_event`` shades the pre-event reference interval (not drawn for a session baseline).
    """
    plt = pyplot()
    tasks = tasks or {}
    targets = sorted({t for d in trials.values() for t in d})
    fig, axes = plt.subplots(1, max(1, len(targets)), figsize=(5.0 * max(1, len(targets)) + 2.6, 3.8), squeeze=False,
                             sharey=True, layout="constrained")
    numbers: dict = {}
    labels = sorted(trials)
    colours = plt.get_cmap("tab10" if len(labels) <= 10 else "tab20")
    late = (t_s >= ERD_LATE_S[0]) & (t_s <= ERD_LATE_S[1])
    shown = []
    for i, target in enumerate(targets):
        ax = axes[0, i]
        for k, label in enumerate(labels):
            x = trials[label].get(target)
            if x is None or not len(x):
                continue
            db = 10.0 * np.log10(x)
            m, h = mean_ci95(db)
            name = f"{label} · {tasks[label]}" if tasks.get(label) and tasks[label] != label else label
            ax.plot(t_s, m, color=colours(k), lw=1.4, label=name)
            ax.fill_between(t_s, m - h, m + h, color=colours(k), alpha=0.12, lw=0)
            shown += [m - np.nan_to_num(h), m + np.nan_to_num(h)]
            per_trial = db[:, late].mean(axis=1)
            pm, ph = mean_ci95(per_trial[:, None])
            ci = None if np.isnan(ph[0]) else [float(pm[0] - ph[0]), float(pm[0] + ph[0])]
            numbers.setdefault(label, {})[target] = {
                "task": tasks.get(label), "n_trials": int(len(x)), "mean_db_0.5_4s": float(pm[0]), "ci95_db_0.5_4s": ci,
                "mean_pct_0.5_4s": float(db_to_pct(pm[0])),
                "ci95_pct_0.5_4s": None if ci is None else [float(db_to_pct(c)) for c in ci],
                "t_s": t_s.round(3).tolist(), "mean_db": m.tolist(), "ci95_db_low": np.nan_to_num(m - h).tolist(),
                "ci95_db_high": np.nan_to_num(m + h).tolist()}
        ax.axhline(0, color="#888", lw=0.8)
        ax.axvline(0, color="#555", lw=0.8, ls=":")
        if pre_event:  # the reference interval, shaded
            ax.axvspan(*ERD_BASELINE_S, color="#eee", lw=0, zorder=0)
        ax.set_title(f"{target}: mu power change")
        ax.set_xlabel("time from event onset (s)")
    if shown:  # the axis shows the data: robust limits, not a single wild edge of one CI band
        v = np.concatenate(shown)
        lo, hi = np.percentile(v[np.isfinite(v)], [0.5, 99.5])
        pad = 0.1 * max(hi - lo, 1.0)
        axes[0, 0].set_ylim(min(lo, 0.0) - pad, max(hi, 0.0) + pad)
    axes[0, 0].set_ylabel(f"dB vs {baseline_text or 'reference'}\nERD < 0 < ERS", fontsize=8)
    sec = axes[0, -1].secondary_yaxis("right", functions=(db_to_pct, pct_to_db))
    lo_db, hi_db = axes[0, 0].get_ylim()  # percent ticks where the dB axis is (its log scale puts few below 0)
    sec.set_yticks([p for p in (-90, -75, -50, -25, 0, 50, 100, 200, 400, 800)
                    if lo_db <= pct_to_db(p) <= hi_db])
    sec.set_ylabel("power change (%)")
    handles, names = axes[0, 0].get_legend_handles_labels()
    if handles:  # one legend, outside every panel
        fig.legend(handles, names, loc="outside right upper", fontsize=8, title="condition", title_fontsize=8)
    save_figure(fig, out / "erd.png", plt, dpi=120)
    result = {"baseline": baseline_text, "units": "dB = 10*log10(power / reference); percent = 100*(10^(dB/10) - 1)",
              "conditions": numbers}
    (out / "erd.json").write_text(json.dumps(result, indent=1))
    return result


def replay_epochs(runs: list[Path], picks=None, keys: list[dict] | None = None):
    """MNE Epochs (−1…+4 s around each condition event) of the EEG files the replays read.

    Event ids are the condition keys (sorted, numbered from 1; ``R03/T1`` where a label is kept
    apart per run, which MNE reads as tags: ``epochs["T1"]`` selects every run's T1). Each epoch's
    ``metadata`` row holds its ``subject``, ``run``, ``session``, ``label`` (the file's annotation,
    after a label map), ``condition``, ``task`` (where known) and ``onset_s``; MNE keeps it through
    ``save``/``read_epochs``. Only replays of EEG files take part (not session journals). Returns
    None when there is none.
    """
    import mne
    import pandas as pd

    from ..core.record import field_of
    from ..hardware.sources.edf import read_raw
    from .replay import run_of, session_of

    summaries = [json.loads((r / "summary.json").read_text()) for r in runs]
    keys = keys or [{} for _ in summaries]
    conds = sorted({k.get(e["label"], e["label"]) for s, k in zip(summaries, keys) for e in s.get("events", [])})
    event_id = {lab: i + 1 for i, lab in enumerate(conds)}
    parts = []
    for s, key in zip(summaries, keys):
        src = Path(s.get("source") or "")
        if not src.is_file() or not s.get("events"):
            continue
        raw = read_raw(src)
        drop = [c for c in raw.ch_names if field_of(c) is not None]
        if drop:
            raw.drop_channels(drop)
        if picks is not None:
            raw.pick([c for c in picks if c in raw.ch_names])
        sf = raw.info["sfreq"]
        evs = s["events"]
        events = np.array([[int(round(e["onset_s"] * sf)), 0, event_id[key.get(e["label"], e["label"])]]
                           for e in evs])
        tasks = s.get("tasks") or {}
        meta = pd.DataFrame({
            "subject": [str(s.get("subject") or "n/a")] * len(evs), "run": [str(s.get("run") or run_of(src))] * len(evs),
            "session": [str(s.get("session") or session_of(src))] * len(evs),
            "label": [e["label"] for e in evs], "condition": [key.get(e["label"], e["label"]) for e in evs],
            "task": [str(tasks.get(e["label"], "n/a")) for e in evs],
            "onset_s": [float(e["onset_s"]) for e in evs]})
        ep = mne.Epochs(raw, events, event_id, tmin=ERD_WINDOW_S[0], tmax=ERD_WINDOW_S[1], baseline=None, preload=True,
                        reject_by_annotation=False, on_missing="ignore", metadata=meta, verbose="error")
        if len(ep):  # a recording whose only event starts at 0 s (a resting run) has none
            parts.append(ep)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else mne.concatenate_epochs(parts, verbose="error")


def tfr_figure(epochs, targets, out: Path, tasks: dict | None = None) -> list[str]:
    """``tfr.png``: Morlet time–frequency power per condition (rows) and target (columns), in dB
    vs each condition's pre-event −1.0…−0.25 s (MNE ``compute_tfr``, n_cycles = f/2;
    ``apply_baseline(mode="logratio")``, ×10). The colour scale is symmetric at the 98th
    percentile of what is shown."""
    plt = pyplot()
    tasks = tasks or {}
    labels = [lab for lab in sorted(epochs.event_id) if len(epochs[lab])]
    targets = [t for t in targets if t in epochs.ch_names]
    if not labels or not targets:
        return []
    maps = {}
    for lab in labels:
        ep = epochs[lab].copy().pick(targets)
        tfr = ep.compute_tfr("morlet", freqs=TFR_FREQS_HZ, n_cycles=TFR_FREQS_HZ / 2.0, return_itc=False,
                             average=True, decim=2, verbose="error")
        tfr.apply_baseline(ERD_BASELINE_S, mode="logratio", verbose="error")
        maps[lab] = (tfr, len(ep))
    lim = max(1.0, float(np.nanpercentile(np.abs(np.concatenate([10 * m.data.ravel() for m, _ in maps.values()])), 98)))
    fig, axes = plt.subplots(len(labels), len(targets), figsize=(5 * len(targets) + 1, 2.2 * len(labels) + 0.8),
                             squeeze=False, layout="constrained", sharex=True, sharey=True)
    for i, lab in enumerate(labels):
        tfr, n = maps[lab]
        for j, t in enumerate(targets):
            ax = axes[i, j]
            im = ax.pcolormesh(tfr.times, tfr.freqs, 10 * tfr.data[j], cmap="RdBu_r", vmin=-lim, vmax=lim,
                               shading="auto")
            ax.axvline(0, color="k", lw=0.8, ls=":")
            task = f" · {tasks[lab]}" if tasks.get(lab) and tasks[lab] != lab else ""
            ax.set_title(f"{lab}{task} at {t} (n={n})", fontsize=9)
            ax.set_ylabel("Hz")
    fig.colorbar(im, ax=axes.ravel().tolist(),
                 label=f"power (dB) vs pre-event {ERD_BASELINE_S[0]:g} to {ERD_BASELINE_S[1]:g} s", shrink=0.6)
    for ax in axes[-1]:
        ax.set_xlabel("time from event onset (s)")
    save_figure(fig, out / "tfr.png", plt)
    return labels


def _si_rows(conds: dict, name=None, tasks: dict | None = None) -> tuple[list[dict], list[str]]:
    targets = sorted({t for c in conds.values() for t in (c.get("si") or {})})
    rows = []
    for label, c in conds.items():
        row = {"recording": name} if name else {}
        row.update({"condition": label, "task": (tasks or {}).get(label), "segments": c.get("segments"),
                    "time (s)": c.get("seconds"), **{f"SI {t} (log10 ratio)": (c.get("si") or {}).get(t) for t in targets},
                    "SI combined (log10 ratio)": c.get("combined")})
        rows.append(row)
    return rows, list(rows[0]) if rows else []


def _condition_tasks(summaries: list[dict], keys: list[dict]) -> dict:
    """condition key -> the task it means (where every recording of it agrees), for labels."""
    out: dict = {}
    for s, key in zip(summaries, keys):
        for label, cond in key.items():
            task = (s.get("tasks") or {}).get(label)
            if task is not None:
                out.setdefault(cond, set()).add(task)
    return {c: next(iter(t)) for c, t in out.items() if len(t) == 1}


def replay_report(folder, out=None, epochs_out=None, erd_baseline: str = "pre-event") -> Path:
    """Report of a replay output: one recording (``feedback.tsv`` + ``summary.json``) or a
    dataset replay (per-recording sub-folders + ``group.json``).

    Sections: event-locked ERD/ERS per condition at the targets (dB, mean ± 95 % CI over trials
    taken in dB, and as percent; vs each trial's pre-event interval, or with
    ``erd_baseline="session"`` vs the replay's baseline, labelled so), time–frequency maps (MNE,
    dB), SI per condition (tables with units), the group summary, and for one recording the SI
    over time. A label that means different tasks in different runs is kept apart per run
    (:func:`neurofeed.analysis.replay.condition_keys`). ``epochs_out`` (``*-epo.fif``) also writes the
    event-locked EEG epochs as MNE Epochs, with subject, run, session and label in their metadata.
    """
    import logging

    from .replay import condition_keys

    if erd_baseline not in ERD_BASELINES:
        raise NeurofeedError(f"--erd-baseline {erd_baseline!r} is not one of {', '.join(ERD_BASELINES)}.")
    plt = pyplot()
    folder = Path(folder)
    out = Path(out or folder / "report")
    out.mkdir(parents=True, exist_ok=True)
    runs = _replay_runs(folder)
    if not runs:
        raise NeurofeedError(f"{folder}: no replay outputs (feedback.tsv + summary.json) inside.")
    summaries = {r: json.loads((r / "summary.json").read_text()) for r in runs}
    slist = [summaries[r] for r in runs]
    keys, notes = condition_keys(slist)
    for note in notes:
        logging.getLogger(__name__).warning("%s", note)
    tasks = _condition_tasks(slist, keys)
    baseline_text = erd_baseline_text(erd_baseline, slist)
    sections = [("Replay", _replay_head(runs, slist, baseline_text, notes))]
    sections += _erd_sections(runs, keys, erd_baseline, baseline_text, tasks, out)
    sections += _epochs_sections(runs, summaries, keys, tasks, out, epochs_out)
    sections += _group_sections(folder / "group.json", tasks)
    rows = []
    for r, s in summaries.items():
        rows += _si_rows(s["conditions"], r.name if len(runs) > 1 else None, s.get("tasks"))[0]
    sections.append(("SI per condition (mean log10 power vs baseline)",
                     html_table(rows, list(rows[0]) if rows else [])))
    if len(runs) == 1:
        sections += _one_recording_sections(runs[0], slist[0], out, plt)
    return html_page(f"neurofeed replay report — {folder.name}", sections, out / "index.html")


def _replay_head(runs: list[Path], summaries: list[dict], baseline_text: str, notes: list[str]) -> str:
    """The replay report's first section: recordings, modes, baseline label, ERD reference, sampling
    rate; what causal and offline mean; the conditions kept apart per run."""
    first = summaries[0]
    modes = sorted({s.get("mode", "?") for s in summaries})
    return (html_table([{"recordings": len(runs), "mode": ", ".join(modes), "baseline label": first.get("baseline_label"),
                         "ERD reference": baseline_text, "sampling rate (Hz)": first.get("sfreq")}],
                       ["recordings", "mode", "baseline label", "ERD reference", "sampling rate (Hz)"])
            + "<p>causal: what the live loop would have shown (baseline from the first baseline segment, "
              "taken at its time); offline: baseline pooled over every baseline segment of the recording."
              "</p>"
            + "".join(f"<p><b>Conditions kept apart:</b> {html.escape(n)}.</p>" for n in notes))


def _erd_sections(runs, keys, erd_baseline: str, baseline_text: str, tasks: dict, out: Path) -> list:
    """The event-locked ERD/ERS section (``erd.png`` and its numbers, dB and %), if there are trials."""
    t_s, trials = erd_trials(runs, keys, erd_baseline)
    if not trials:
        return []
    numbers = erd_figure(t_s, trials, out, baseline_text, tasks, erd_baseline == "pre-event")["conditions"]
    rows = [{"condition": lab, "task": d["task"], "target": t, "trials": d["n_trials"],
             "mean 0.5–4 s (dB)": d["mean_db_0.5_4s"],
             "95 % CI (dB)": _interval(d["ci95_db_0.5_4s"], "{:+.2f}"),
             "mean (%)": d["mean_pct_0.5_4s"], "95 % CI (%)": _interval(d["ci95_pct_0.5_4s"], "{:+.0f}")}
            for lab, per in numbers.items() for t, d in per.items()]
    return [(f"Event-locked ERD/ERS (mu power vs {baseline_text}; mean ± 95 % CI over trials, taken in dB)",
             '<img src="erd.png" alt="ERD/ERS time courses">' + html_table(rows, list(rows[0])))]


def _epochs_sections(runs, summaries: dict, keys, tasks: dict, out: Path, epochs_out) -> list:
    """The time–frequency section (``tfr.png``) where the recordings' EEG can be read, and with
    ``epochs_out`` the epochs written (MNE Epochs) and their counts per condition."""
    targets = list(summaries[runs[0]].get("targets") or [])
    epochs = replay_epochs(runs, keys=keys) if (epochs_out or any(Path(s.get("source") or "").is_file()
                                                                   for s in summaries.values())) else None
    if epochs is None:
        return []
    sections = []
    if tfr_figure(epochs, targets, out, tasks):
        sections.append((f"Time–frequency (Morlet, dB vs pre-event {ERD_BASELINE_S[0]:g} to "
                         f"{ERD_BASELINE_S[1]:g} s, EEG at the file's own reference)",
                         '<img src="tfr.png" alt="time-frequency maps">'))
    if epochs_out:
        epochs.save(epochs_out, overwrite=True, verbose="error")
        counts = [{"condition": k, "task": tasks.get(k), "epochs": int(len(epochs[k]))}
                  for k in sorted(epochs.event_id) if len(epochs[k])]
        sections.append((f"Epochs written to {Path(epochs_out).name} (metadata: subject, run, session, label, "
                         f"condition, task)", html_table(counts, ["condition", "task", "epochs"])))
    return sections


def _group_sections(group_file: Path, tasks: dict) -> list:
    """A dataset replay's ``group.json``: the mean over subjects per condition (with its 95 % CI) and
    each subject's mean over recordings; nothing without the file."""
    if not group_file.exists():
        return []
    g = json.loads(group_file.read_text())
    rows = [{"condition": lab, "task": tasks.get(lab), "subjects": d["n_subjects"],
             "SI combined (log10 ratio)": d["combined"],
             "95 % CI low": (d["ci95"] or [np.nan])[0], "95 % CI high": (d["ci95"] or [np.nan, np.nan])[1],
             **{f"SI {t}": v.get("mean") for t, v in d["si"].items()}} for lab, d in g["group"].items()]
    subjects = [{"subject": sub, "condition": lab, "recordings": d["n_recordings"],
                 "SI combined (log10 ratio)": d["combined"], **{f"SI {t}": v for t, v in d["si"].items()}}
                for sub, conds in g["subjects"].items() for lab, d in conds.items()]
    return [("Group (mean over subjects)", html_table(rows, list(rows[0]) if rows else [])),
            ("Subjects (mean over recordings)", html_table(subjects, list(subjects[0]) if subjects else []))]


def _one_recording_sections(run: Path, s: dict, out: Path, plt) -> list:
    """One recording's replay: its SI over time (``si_over_time.png``) and its session figures."""
    data = np.genfromtxt(run / "feedback.tsv", delimiter="\t", names=True)
    fig, ax = plt.subplots(figsize=(11, 3.4), layout="constrained")
    ax.plot(data["time_s"], data["si_combined"], lw=0.7, label="SI (combined)")
    ax.plot(data["time_s"], data["threshold"], ls="--", lw=1.0, label="threshold")
    label_si_axes(ax, "time (s)")
    fig.legend(loc="outside right upper", fontsize=8)
    save_figure(fig, out / "si_over_time.png", plt)
    return [("SI over time", '<img src="si_over_time.png" alt="SI over time">'),
            ("Session figures", figures_table({"duration (s)": s.get("duration_s"), "updates": s.get("updates")},
                                              s.get("reward_rate"), s.get("gated_s"), s.get("baseline_uv2")))]


def _interval(ci, fmt: str) -> str | None:
    """A confidence interval as one table cell, ``[-3.10, -0.42]`` (None when there is none)."""
    return None if ci is None else f"[{fmt.format(ci[0])}, {fmt.format(ci[1])}]"


def participant_report(folder, out=None) -> Path:
    """Progress across a participant's sessions: the spread of training SI per session, not
    only a trend (progress spirals: setbacks and returns are expected)."""
    plt = pyplot()
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
    save_figure(fig, out / "progress.png", plt)
    rows = [{"session": n, "median SI (log10 ratio)": float(np.median(d)),
             "IQR (log10 ratio)": float(np.subtract(*np.percentile(d, [75, 25]))), "reward (%)": r}
            for n, d, r in zip(names, dists, rates)]
    return html_page(f"neurofeed progress — {folder.name}",
                 [("Progress across sessions", '<img src="progress.png">' + html_table(rows, list(rows[0])))],
                 out / "index.html")


def make_report(path, out=None, epochs_out=None, unblind=None, erd_baseline: str = "pre-event") -> Path:
    """Dispatch on what ``path`` is: a session folder, a replay output
    (one recording or a dataset with ``group.json``) or a participant folder. ``epochs_out``
    and ``erd_baseline`` (``"pre-event"`` or ``"session"``) apply to replays; ``unblind`` (a key
    file) names a blinded session's arm."""
    p = Path(path)
    if not p.exists():
        raise NeurofeedError(f"{p}: no such file or folder.")
    if unblind and not is_journal(p):
        raise NeurofeedError(f"--unblind {unblind}: applies to a session folder; {p} is not one.")
    if epochs_out and not str(epochs_out).endswith(("-epo.fif", "_epo.fif", "-epo.fif.gz", "_epo.fif.gz")):
        raise NeurofeedError(f"--epochs-out {epochs_out}: MNE Epochs files end in -epo.fif (e.g. S001-epo.fif).")
    if is_journal(p):
        return session_report(p, out, unblind=unblind)
    if ((p / "feedback.tsv").exists() and (p / "summary.json").exists()) or (p / "group.json").exists():
        return replay_report(p, out, epochs_out=epochs_out, erd_baseline=erd_baseline)
    if p.is_dir() and any(is_journal(c) for c in p.iterdir() if c.is_dir()):
        return participant_report(p, out)
    raise NeurofeedError(f"{p}: not a session folder, a replay output (feedback.tsv + summary.json) or a "
                         f"participant folder.")


def export_bids(path, root, task="neurofeedback") -> Path:
    """Write a session's BDF into a BIDS dataset with mne-bids (feedback signals as misc: the BDF
    labels them ``MISC <name>``, which MNE's ``infer_types`` reads as the misc type)."""
    import mne
    from mne_bids import BIDSPath, write_raw_bids

    j = read_journal(path)
    bdfs = list(Path(j.path).glob("*.bdf"))
    if not bdfs:
        raise NeurofeedError(f"{j.path}: no BDF yet; run `neurofeed recover {j.path}` first.")
    raw = mne.io.read_raw_bdf(bdfs[0], infer_types=True, verbose="error")
    sub = "".join(ch for ch in str(j.header.get("participant", "X")) if ch.isalnum())
    ses = Path(j.path).name.split("_")[0].replace("-", "")
    bp = BIDSPath(subject=sub, session=ses, task=task.replace("-", ""), root=root, datatype="eeg")
    write_raw_bids(raw, bp, overwrite=True, verbose=False)
    return bp.fpath
