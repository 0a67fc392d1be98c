"""The clinician console: traces, mu-band spectrum, SI with threshold, block, quality, latency, the
control keys, the channel selector for marking a channel bad and the participant's delay designs.

Plot items are created once and updated with ``setData``; their axes have fixed ranges (relative
time) so the axes are not re-laid out every frame. No DSP runs here: the console reads the latest
``FeedbackState``, the state history, ring-buffer snapshots and the :class:`~.spectra.SpectrumWorker`.

This module imports PySide6 and pyqtgraph: it is imported only where windows are shown
(:class:`~neurofeed.ui.display.Views`, the dyad view, tests).
"""

from __future__ import annotations

import html
import math
import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from ..dsp.quality import flag_names
from .controls import KEY_HINTS, number_text, si_text
from .traces import TraceDisplay, make_traces_panel

__all__ = ["CONSOLE_PARTS", "TEXT_EVERY_S", "TRACE_S", "Console", "delay_choices", "delay_table", "fixed_plot",
           "rich_label"]

CONSOLE_PARTS = ("traces", "si", "text", "spectrum")
TEXT_EVERY_S = 0.25  # console text (status line, quality table) at 4 Hz: text layout is costly
TRACE_S = 5.0  # seconds of EEG in the console
TRACE_EXTRA = ("Cz", "FC3", "CP3", "FC4", "CP4")  # shown beside the targets where the montage has them


def rich_label(text: str = "", wrap: bool = False) -> QtWidgets.QLabel:
    """A label showing HTML (``wrap``: a long text wraps; it never widens the window)."""
    label = QtWidgets.QLabel(text)
    label.setTextFormat(QtCore.Qt.RichText)
    label.setWordWrap(wrap)
    return label


def fixed_plot(title, xr, yr, log_y=False) -> pg.PlotWidget:
    """A plot with fixed ranges ``xr``, ``yr`` that takes no keys and no mouse (no per-frame axis layout)."""
    w = pg.PlotWidget(title=title)
    w.setFocusPolicy(QtCore.Qt.NoFocus)  # keys go to the console's controls, never to a plot
    w.setMouseEnabled(False, False)
    w.hideButtons()
    w.setMenuEnabled(False)
    w.setLogMode(False, log_y)
    w.disableAutoRange()
    w.setXRange(*xr, padding=0)
    w.setYRange(*yr, padding=0)
    return w


# the participant's accuracy/delay curve, shown once the baseline has ended
def delay_table(processor) -> str:
    """The participant's delay designs as a small table in plain words (``""`` before the
    baseline's end): the design in use, the fastest and the most exact, each with how late the
    bar follows the rhythm and how closely (r), e.g. ``faster: 40 ms, less exact (r 0.45)``.
    The Delay box lists every design."""
    from ..dsp.accuracy import bar_timing

    picks = bar_timing(getattr(processor, "accuracy_curve", None) or {},
                       getattr(processor, "effective_delays", None) or {}, processor.chain.delay_s)
    if not picks:
        return ""
    cells = "".join(f"<tr><td>{words}:&nbsp;</td><td align='right'>{1000 * lag:.0f} ms</td>"
                    f"<td>&nbsp;(r {r:.2f})</td></tr>" for words, _, lag, r in picks)
    return ("<b>Bar timing</b> (this participant; D or the Delay box to change)"
            f"<table cellspacing='0'>{cells}</table>")


def delay_choices(processor) -> list[tuple[str, float]]:
    """``[(label, designed delay s)]`` for the console's Delay box: each design of the
    participant's curve with its effective delay and r; empty before the baseline's end."""
    curve = getattr(processor, "accuracy_curve", None) or {}
    eff = getattr(processor, "effective_delays", None) or {}
    out = []
    for d, r in curve.items():
        lag = eff.get(d)
        label = (f"{1000 * d:.0f} ms design → {1000 * lag[0]:.0f} ms, r {lag[1]:.2f}" if lag
                 else f"{1000 * d:.0f} ms design, r {r:.2f}")
        out.append((label, float(d)))
    return out


def _combo_row(layout, label: str, box: QtWidgets.QComboBox) -> None:
    """``label: [box]`` as a row of ``layout``; the box takes no keys ([ ], D and the mouse pick)."""
    row = QtWidgets.QHBoxLayout()
    row.addWidget(QtWidgets.QLabel(label))
    box.setFocusPolicy(QtCore.Qt.NoFocus)  # the keys stay the console's controls
    row.addWidget(box, 1)
    layout.addLayout(row)


class Console(QtWidgets.QWidget):
    """The clinician console of one session.

    Parameters
    ----------
    pipeline : Pipeline
        Read only: its source, chain, ring buffer, history, latency probe and engine.
    spectra : SpectrumWorker
        The spectra and per-channel RMS computed off the GUI thread.
    stats : FrameStats
        The participant view's frame times (shown in the status line).
    history_s : float
        Seconds of SI history in the SI plot.
    check : dict, optional
        The signal check made before the session (its table is the console's first panel).
    """

    def __init__(self, pipeline, spectra, stats, history_s: float = 60.0, check: dict | None = None):
        super().__init__()
        self.pipeline, self.spectra, self.stats, self.history_s = pipeline, spectra, stats, history_s
        self.names = list(pipeline.source.ch_names)
        self.setWindowTitle("neurofeed — clinician console")
        grid = QtWidgets.QGridLayout(self)
        self.info = rich_label(wrap=True)  # a long status wraps; it never widens the window
        grid.addWidget(self.info, 0, 0, 1, 2)
        self._build_plots(grid)
        self.side = self._build_side(check)
        grid.addWidget(self.side, 2, 1)
        # the end of the session: the summary and where the recording is, in place of the plots
        self.end_panel = QtWidgets.QTextBrowser()  # scrolls when a long protocol's summary does not fit
        self.end_panel.setFrameShape(QtWidgets.QFrame.NoFrame)
        self.end_panel.setFocusPolicy(QtCore.Qt.NoFocus)  # Esc stays the console's
        self.end_panel.setStyleSheet("background: transparent;")
        self.end_panel.hide()
        grid.addWidget(self.end_panel, 1, 0, 2, 2)
        self.hints = rich_label(" · ".join(f"<b>{k}</b> {v}" for k, v in KEY_HINTS), wrap=True)
        grid.addWidget(self.hints, 3, 0, 1, 2)
        self.bad_channels: set = set()
        self.notes = 0
        self.status_note = ""  # the last operator action, shown in the status line
        self._lat_t, self._lat, self._fr = 0.0, {}, {}
        self._text_t = 0.0
        self._spec_version = -1
        self._si_range = (-1.0, 1.0)
        self.resize(1200, 760)

    def _build_plots(self, grid) -> None:
        """The traces (top left), the spectrum (top right) and the SI with its threshold (bottom left)."""
        chain, src = self.pipeline.processor.chain, self.pipeline.source
        trace_names = list(dict.fromkeys(chain.targets + [n for n in self.names if n in TRACE_EXTRA]))
        trace_rows = [self.names.index(n) for n in trace_names]
        # display-only conditioning (the session's high-pass + notch), scale per channel, railed/flat lanes
        self.trace_panel = make_traces_panel(TraceDisplay.for_chain(chain, len(trace_rows), TRACE_S), trace_names,
                                             fixed_plot(f"EEG, last {TRACE_S:g} s", (-TRACE_S, 0), (0, 1)),
                                             trace_rows, self.pipeline.ring)
        self.traces, self.trace_items = self.trace_panel.plot, self.trace_panel.items
        grid.addWidget(self.trace_panel, 1, 0)
        self.spec = fixed_plot("Spectrum at targets (µV²/Hz)", (1, min(45, src.sfreq / 2)), (-3, 3), log_y=True)
        self.spec_items = [self.spec.plot(pen=pg.intColor(i, 3)) for i in range(len(chain.targets))]
        lo, hi = chain.band_hz
        self.band = pg.LinearRegionItem((lo, hi), movable=False, brush=(80, 160, 80, 40))
        self.spec.addItem(self.band)
        grid.addWidget(self.spec, 1, 1)
        # a short title: the plot cannot be narrower than its title
        self.si_plot = fixed_plot("SI deciding reward, threshold", (-self.history_s, 0), (-1, 1))
        self.si_item = self.si_plot.plot(pen=pg.mkPen("#4a90c2", width=2))
        self.thr_item = self.si_plot.plot(pen=pg.mkPen("#f2a03d", width=2, style=QtCore.Qt.DashLine))
        self.si_plot.addItem(pg.InfiniteLine(0, angle=0, pen=pg.mkPen("#888")))
        self.si_plot.setLabel("bottom", "s")
        grid.addWidget(self.si_plot, 2, 0)

    def _build_side(self, check: dict | None) -> QtWidgets.QWidget:
        """The side column: the check and the quality table (they scroll when their channels do
        not fit, e.g. 16 channels on a 768-px screen: never a window taller than its screen), then
        the delay designs and the two boxes, always in view."""
        side_widget = QtWidgets.QWidget()
        side = QtWidgets.QVBoxLayout(side_widget)
        side.setContentsMargins(0, 0, 0, 0)
        tables = QtWidgets.QWidget()
        tables_lay = QtWidgets.QVBoxLayout(tables)
        tables_lay.setContentsMargins(0, 0, 0, 0)
        if check is not None:  # the signal check made before the session: the console's first panel
            from ..hardware.signal_check import check_html

            self.check_label = rich_label(check_html(check), wrap=True)
            tables_lay.addWidget(self.check_label)
        self.quality = rich_label()
        self.quality.setAlignment(QtCore.Qt.AlignTop)
        tables_lay.addWidget(self.quality, 1)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidget(tables)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QtWidgets.QFrame.NoFrame)
        scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarAlwaysOff)
        scroll.setFocusPolicy(QtCore.Qt.NoFocus)
        scroll.setMinimumWidth(tables.minimumSizeHint().width())
        side.addWidget(scroll, 1)
        self.delays = rich_label(wrap=True)  # the participant's designs in plain words (after the baseline)
        side.addWidget(self.delays)
        self.channel_box = QtWidgets.QComboBox()
        self.channel_box.addItems(self.names)
        _combo_row(side, "Channel:", self.channel_box)  # [ ] and the mouse select
        # the participant's designs (filled at the baseline's end): picking one refits the estimator
        self.delay_box = QtWidgets.QComboBox()
        self.delay_box.setEnabled(False)
        _combo_row(side, "Delay:", self.delay_box)
        return side_widget

    def show_end(self, summary_text: str, folder: str | None, close_after_s: float | None):
        """The session has ended: its summary and the recording's folder, until closed."""
        for w in (self.traces, self.spec, self.si_plot, self.side):
            w.hide()
        where = (f"<p>Recording: <b>{html.escape(folder)}</b><br>Report: <code>neurofeed report "
                 f"{html.escape(folder)}</code> (writes {html.escape(str(Path(folder) / 'report'))})</p>"
                 if folder else "<p>Not recorded.</p>")
        closing = (f"This window closes by itself in {close_after_s:g} s." if close_after_s is not None
                   else "Close this window (or press Esc) when done.")
        self.info.setText("<b>Session complete</b>")
        # pre-wrap: the summary's long lines wrap at the window's edge (they never widen it)
        self.end_panel.setHtml(f"<p style='white-space:pre-wrap; font-family:monospace'>"
                               f"{html.escape(summary_text.strip())}</p>{where}<p>{closing}</p>")
        self.end_panel.show()
        self.hints.setText("<b>Esc</b> close")

    def delay_index(self, delay_s):
        """Index of the Delay box's item nearest ``delay_s``."""
        ds = [self.delay_box.itemData(i) for i in range(self.delay_box.count())]
        return int(np.argmin([abs(d - delay_s) for d in ds])) if ds else -1

    # one part per call: the frame loop spreads the console over ticks
    def show_part(self, part, st):
        """Update one part (:data:`CONSOLE_PARTS`) for the state ``st``."""
        getattr(self, "_show_" + part)(st)

    def show_state(self, st):
        """Everything at once (screenshots, tests)."""
        self._text_t = 0.0
        for part in CONSOLE_PARTS:
            self.show_part(part, st)

    def _show_si(self, st):
        t, si, thr, _ = self.pipeline.history.ordered()
        ok = np.isfinite(t) & np.isfinite(si) & (t > st.t_s - self.history_s)
        ok &= not self.pipeline.blinded  # a blinded session (sham trial) hides the live SI
        self.si_item.setData(t[ok] - st.t_s, si[ok])
        okt = ok & np.isfinite(thr)
        self.thr_item.setData(t[okt] - st.t_s, thr[okt])
        if ok.any():  # widen the fixed range only when the data leave it (no per-frame axis layout)
            lo = min(float(si[ok].min()), float(thr[okt].min()) if okt.any() else 0.0)
            hi = max(float(si[ok].max()), float(thr[okt].max()) if okt.any() else 0.0)
            r0, r1 = self._si_range
            if lo < r0 or hi > r1:
                self._si_range = (min(r0, math.floor(lo * 2) / 2), max(r1, math.ceil(hi * 2) / 2))
                self.si_plot.setYRange(*self._si_range, padding=0)

    def _show_traces(self, st):
        self.trace_panel.show(st.quality_flags)

    def _show_spectrum(self, st):
        spectra = self.spectra
        if spectra.version != self._spec_version and spectra.freqs.size:
            self._spec_version = spectra.version
            for j, item in enumerate(self.spec_items):
                item.setData(spectra.freqs[1:], np.maximum(spectra.psd[j][1:], 1e-6))

    def _show_text(self, st):
        now = time.monotonic()
        if now - self._text_t < TEXT_EVERY_S:
            return
        self._text_t = now
        self._info(st)

    def _info(self, st):
        """The status line, the delay designs and their box, the quality table."""
        text = self._status_text(st)
        if text != self.info.text():
            self.info.setText(text)
        self._show_delays()
        q = self._quality_text(st)
        if q != self.quality.text():
            self.quality.setText(q)

    def _status_text(self, st) -> str:
        """The status line: block and time left, SI and threshold, reward, gate, latency, notes."""
        f = number_text
        now = time.monotonic()
        if now - self._lat_t > 1.0:  # percentiles over the whole run: once a second, not per frame
            probe = self.pipeline.probe
            self._lat_t = now
            self._lat = probe.summary().get("compute_to_publish_ms", {}) if probe.n else {}
            self._fr = self.stats.summary() or {}
        lat, fr = self._lat, self._fr
        rr = "—" if math.isnan(st.reward_rate) else f"{100 * st.reward_rate:.0f} %"
        status = "<b style='color:#c0392b'>SIGNAL LOST</b>" if st.signal_lost else (
            "<b>PAUSED</b>" if st.paused else ("<b style='color:#27ae60'>REWARD</b>" if st.reward else "—"))
        gate = ("<b style='color:#d35400'>GATE: " + ", ".join(st.gate_reasons) + "</b>") if st.gated else "gate off"
        extra = self._status_extras(st)
        return (f"<b>{st.block_label or '—'}</b> ({st.block_kind or '—'}) · block {st.block_index + 1}/{st.n_blocks} · "
                f"left {f(st.block_left_s, '.0f')} s · session left {f(st.session_left_s, '.0f')} s · "
                + (f"{si_text(st)} · reward rate {rr} · "
                   if not self.pipeline.blinded else "SI blinded · ")  # a blinded session (sham trial) hides it
                + f"{status} · {gate}<br>compute→publish p50 {f(lat.get('p50'), '.2f')} ms, "
                f"p99 {f(lat.get('p99'), '.2f')} ms · frame p99 {f(fr.get('p99'), '.1f')} ms"
                + ("<br>" + " · ".join(extra) if extra else ""))

    def _status_extras(self, st) -> list[str]:
        """The status line's last row: paused schedule, locked threshold, bad channels, the last action."""
        extra = []
        if getattr(st, "schedule_paused", False):
            extra.append("<b>SCHEDULE PAUSED</b>")
        if getattr(st, "threshold_locked", False):
            extra.append("<b>threshold locked</b>")
        if self.bad_channels:
            extra.append("bad: " + ", ".join(sorted(self.bad_channels)))
        if self.status_note:
            extra.append(self.status_note)
        carried = getattr(self.pipeline.engine, "carried_from", None)
        if carried:  # [baseline] carry = "last": say where the baseline and thresholds came from
            extra.append(f"baseline and thresholds carried over from {Path(carried).name}")
        return extra

    def _show_delays(self) -> None:
        """The delay table, and the Delay box once the baseline has ended (showing the design in use)."""
        processor = self.pipeline.processor
        table = delay_table(processor)
        if table != self.delays.text():
            self.delays.setText(table)
        if not self.delay_box.isEnabled():
            choices = delay_choices(processor)
            if choices:  # the baseline has ended: offer the participant's designs
                for label, d in choices:
                    self.delay_box.addItem(label, d)
                self.delay_box.setEnabled(True)
        if self.delay_box.isEnabled():  # show the design in use (a refused choice snaps back)
            i = self.delay_index(processor.chain.delay_s)
            if i != self.delay_box.currentIndex():
                self.delay_box.setCurrentIndex(i)

    def _quality_text(self, st) -> str:
        """The signal quality table: per channel RMS, line noise and flags; bad channels greyed."""
        rows = []
        flags, spectra = st.quality_flags, self.spectra
        for i, n in enumerate(self.names):
            fl = flag_names(int(flags[i])) if i < len(flags) else ()
            colour = "#7f8c8d" if n in self.bad_channels else ("#c0392b" if fl else "#27ae60")
            mark = " <b>(bad)</b>" if n in self.bad_channels else ""
            rows.append(f"<span style='color:{colour}'>{n}</span>{mark}: rms {spectra.rms_uv[i]:.1f} µV, "
                        f"line {spectra.line_rms_uv[i]:.1f} µV {' '.join(fl)}" if i < len(spectra.rms_uv) else n + mark)
        emg = " ".join(f"{v:.1f}" for v in st.emg_rms_uv)
        return "<b>Signal quality</b><br>" + "<br>".join(rows) + f"<br>EMG rms (µV): {emg}"
