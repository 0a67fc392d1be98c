"""Participant view and clinician console (pyqtgraph + PySide6).

One ``QTimer`` drives drawing: every 8 ms it looks at ``pipeline.latest``; a new state is
painted in the participant view at once, the console redraws at ~30 Hz. Plot items are
created once and updated with ``setData``; no DSP runs here (spectra come from
:class:`SpectrumWorker`). The time from a state's publication to the paint of the participant
frame that shows it is measured in its ``paintEvent``.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np

from ..dsp.accuracy import format_curve  # latency helper
from ..dsp.quality import flag_names
from .spectra import SpectrumWorker

TICK_MS = 8  # the one QTimer: polls for a new state at 125 Hz so a new state waits at most ~8 ms
CONSOLE_EVERY = 4  # the console redraws every 4th tick (~30 Hz); the participant view on every new state
STANDARD = {"bg": "#101820", "bar": "#4a90c2", "reward": "#3cc47c", "thr": "#f2f2f2", "text": "#f2f2f2"}
GENTLE = {"bg": "#e9e4da", "bar": "#9fb4c7", "reward": "#a8c9a4", "thr": "#6b6b6b", "text": "#3d3d3d"}


def _qt():
    from PySide6 import QtCore, QtGui, QtWidgets

    return QtCore, QtGui, QtWidgets


class FrameStats:
    """Publication → paint latency of displayed frames (preallocated ring of the last 2**16)."""

    def __init__(self, capacity=1 << 16):
        self.ms = np.zeros(capacity)
        self.n = 0

    def add(self, ms):
        self.ms[self.n % self.ms.size] = ms
        self.n += 1

    def summary(self):
        if not self.n:
            return None
        v = self.ms[: min(self.n, self.ms.size)]
        return {"p50": float(np.percentile(v, 50)), "p99": float(np.percentile(v, 99)), "frames": int(self.n)}


def make_participant_view(low_stimulation: bool, stats: FrameStats, base_dir: Path | None = None):
    """The participant's window: a calm thermometer with the threshold line, the cue, images."""
    QtCore, QtGui, QtWidgets = _qt()

    class Thermometer(QtWidgets.QWidget):
        def __init__(self):
            super().__init__()
            self.value = 0.5
            self.shown = 0.5
            self.reward = False
            self.mix = 0.0  # 0 = bar colour, 1 = reward colour (eased in gentle mode: no flashing)
            self.colours = GENTLE if low_stimulation else STANDARD
            self.published_ns = 0
            self.easing = False
            self.painted_seq = -1
            self.seq = 0
            self.setMinimumSize(160, 300)

        def paintEvent(self, _event):
            c = self.colours
            p = QtGui.QPainter(self)
            p.setRenderHint(QtGui.QPainter.Antialiasing)
            w, h = self.width(), self.height()
            bw, top, bottom = min(160, w * 0.4), h * 0.05, h * 0.95
            x0 = (w - bw) / 2
            p.fillRect(self.rect(), QtGui.QColor(c["bg"]))
            p.setPen(QtGui.QPen(QtGui.QColor(c["thr"]), 2))
            p.drawRoundedRect(QtCore.QRectF(x0, top, bw, bottom - top), 18, 18)
            fill_h = (bottom - top) * self.shown
            a, b = QtGui.QColor(c["bar"]), QtGui.QColor(c["reward"])
            col = QtGui.QColor.fromRgbF(a.redF() + (b.redF() - a.redF()) * self.mix,
                                        a.greenF() + (b.greenF() - a.greenF()) * self.mix,
                                        a.blueF() + (b.blueF() - a.blueF()) * self.mix)
            p.setPen(QtCore.Qt.NoPen)
            p.setBrush(col)
            p.drawRoundedRect(QtCore.QRectF(x0 + 4, bottom - fill_h, bw - 8, max(0.0, fill_h - 4)), 14, 14)
            ythr = bottom - (bottom - top) * 0.5
            p.setPen(QtGui.QPen(QtGui.QColor(c["thr"]), 3, QtCore.Qt.DashLine))
            p.drawLine(QtCore.QPointF(x0 - 20, ythr), QtCore.QPointF(x0 + bw + 20, ythr))
            p.end()
            if self.seq != self.painted_seq and self.published_ns:
                stats.add((time.perf_counter_ns() - self.published_ns) / 1e6)
                self.painted_seq = self.seq

    class ParticipantView(QtWidgets.QWidget):
        def __init__(self):
            super().__init__()
            self.setWindowTitle("neurofeed")
            c = GENTLE if low_stimulation else STANDARD
            self.setStyleSheet(f"background:{c['bg']}; color:{c['text']};")
            lay = QtWidgets.QHBoxLayout(self)
            self.thermo = Thermometer()
            self.image = QtWidgets.QLabel()
            self.image.setAlignment(QtCore.Qt.AlignCenter)
            self.image.setMinimumWidth(200)
            right = QtWidgets.QVBoxLayout()
            self.cue = QtWidgets.QLabel("")
            self.cue.setWordWrap(True)
            self.cue.setAlignment(QtCore.Qt.AlignCenter)
            f = self.cue.font()
            f.setPointSize(22)
            self.cue.setFont(f)
            right.addWidget(self.image, 3)
            right.addWidget(self.cue, 1)
            lay.addWidget(self.thermo, 1)
            lay.addLayout(right, 2)
            self._stimuli_dir = None
            self._images: list[Path] = []
            self._image_i = -1
            self._image_t = 0.0
            self.resize(900, 560)

        def show_state(self, st):
            th = self.thermo
            target = st.feedback if st.feedback_on and not st.signal_lost else 0.0
            if low_stimulation:  # slow easing: the bar glides, colours blend, nothing flashes
                th.shown += 0.08 * (target - th.shown)
                th.mix += 0.05 * ((1.0 if st.reward else 0.0) - th.mix)
            else:
                th.shown += 0.5 * (target - th.shown)
                th.mix = 1.0 if st.reward else 0.0
            th.published_ns, th.seq = st.published_ns, st.seq
            th.easing = abs(target - th.shown) > 1e-3 or (low_stimulation and abs((1.0 if st.reward else 0.0) - th.mix) > 1e-3)
            text = "Paused" if st.paused else ("Signal lost — please wait" if st.signal_lost else st.cue)
            if self.cue.text() != text:
                self.cue.setText(text)
            self._update_image(st.stimuli)

        def _update_image(self, folder):
            if folder != self._stimuli_dir:
                self._stimuli_dir = folder
                p = (Path(base_dir or ".") / folder) if folder else None  # relative to the protocol file
                self._images = sorted(q for q in p.iterdir() if q.suffix.lower() in (".png", ".jpg", ".jpeg")) \
                    if p and p.is_dir() else []
                self._image_i, self._image_t = -1, 0.0
                if not self._images:
                    self.image.clear()
            if self._images and time.monotonic() - self._image_t > 4.0:  # a new image every 4 s
                self._image_i = (self._image_i + 1) % len(self._images)
                pix = QtGui.QPixmap(str(self._images[self._image_i]))
                self.image.setPixmap(pix.scaled(self.image.size(), QtCore.Qt.KeepAspectRatio,
                                                QtCore.Qt.SmoothTransformation))
                self._image_t = time.monotonic()

    return ParticipantView()


# --- latency helper: the participant's accuracy/delay curve, shown once the baseline has ended ---
def accuracy_line(processor) -> str:
    """``<br>accuracy/delay (this participant): r@0ms=… · design delay 20 ms`` or ``""`` before the baseline's end."""
    curve = getattr(processor, "accuracy_curve", None)
    if not curve:
        return ""
    return (f"<br>accuracy/delay (this participant's baseline): {format_curve(curve)} · "
            f"design delay {1000 * processor.chain.delay_s:.0f} ms")
# --- end latency helper ---


def make_console(pipeline, spectra, stats: FrameStats, history_s: float = 60.0):
    """The clinician console: traces, mu-band spectrum, SI with threshold, block, quality, latency."""
    import pyqtgraph as pg

    QtCore, QtGui, QtWidgets = _qt()
    src = pipeline.source
    chain = pipeline.processor.chain
    names = list(src.ch_names)
    trace_names = list(dict.fromkeys(chain.targets + [n for n in names if n in ("Cz", "FC3", "CP3", "FC4", "CP4")]))
    trace_rows = [names.index(n) for n in trace_names]

    class Console(QtWidgets.QWidget):
        def __init__(self):
            super().__init__()
            self.setWindowTitle("neurofeed — clinician console")
            grid = QtWidgets.QGridLayout(self)
            self.info = QtWidgets.QLabel()
            self.info.setTextFormat(QtCore.Qt.RichText)
            grid.addWidget(self.info, 0, 0, 1, 2)
            self.traces = pg.PlotWidget(title="EEG (µV), last 5 s")
            self.trace_items = [self.traces.plot(pen=pg.intColor(i, len(trace_rows))) for i in range(len(trace_rows))]
            self.traces.setLabel("bottom", "s")
            grid.addWidget(self.traces, 1, 0)
            self.spec = pg.PlotWidget(title="Spectrum at targets (µV²/Hz)")
            self.spec.setLogMode(False, True)
            self.spec_items = [self.spec.plot(pen=pg.intColor(i, 3)) for i in range(len(chain.targets))]
            lo, hi = chain.band_hz
            self.band = pg.LinearRegionItem((lo, hi), movable=False, brush=(80, 160, 80, 40))
            self.spec.addItem(self.band)
            self.spec.setXRange(1, min(45, src.sfreq / 2))
            grid.addWidget(self.spec, 1, 1)
            self.si_plot = pg.PlotWidget(title="SI (log10 power / baseline) and threshold")
            self.si_item = self.si_plot.plot(pen=pg.mkPen("#4a90c2", width=2))
            self.thr_item = self.si_plot.plot(pen=pg.mkPen("#f2a03d", width=2, style=QtCore.Qt.DashLine))
            self.si_plot.addItem(pg.InfiniteLine(0, angle=0, pen=pg.mkPen("#888")))
            self.si_plot.setLabel("bottom", "s")
            grid.addWidget(self.si_plot, 2, 0)
            self.quality = QtWidgets.QLabel()
            self.quality.setTextFormat(QtCore.Qt.RichText)
            self.quality.setAlignment(QtCore.Qt.AlignTop)
            grid.addWidget(self.quality, 2, 1)
            self._lat_t, self._lat, self._fr = 0.0, {}, {}
            self.resize(1200, 760)

        def show_state(self, st):
            t, si, thr, _ = pipeline.history.ordered()
            ok = np.isfinite(t) & np.isfinite(si) & (t > st.t_s - history_s)
            self.si_item.setData(t[ok], si[ok])
            okt = ok & np.isfinite(thr)
            self.thr_item.setData(t[okt], thr[okt])
            x = pipeline.ring.read_last(int(5 * src.sfreq))
            if x.shape[1] > 1:
                tt = np.arange(x.shape[1]) / src.sfreq
                for j, (item, row) in enumerate(zip(self.trace_items, trace_rows)):
                    y = x[row]
                    item.setData(tt, np.nan_to_num(y - y.mean()) + 60.0 * j)
            if spectra.freqs.size:
                for j, item in enumerate(self.spec_items):
                    item.setData(spectra.freqs[1:], np.maximum(spectra.psd[j][1:], 1e-6))
            self._info(st)

        def _info(self, st):
            def f(v, spec="+.2f"):
                return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)
            now = time.monotonic()
            if now - self._lat_t > 1.0:  # percentiles over the whole run: once a second, not per frame
                self._lat_t = now
                self._lat = pipeline.probe.summary().get("sample_to_feedback_ms", {}) if pipeline.probe.n else {}
                self._fr = stats.summary() or {}
            lat, fr = self._lat, self._fr
            rr = "—" if math.isnan(st.reward_rate) else f"{100 * st.reward_rate:.0f} %"
            status = "<b style='color:#c0392b'>SIGNAL LOST</b>" if st.signal_lost else (
                "<b>PAUSED</b>" if st.paused else ("<b style='color:#27ae60'>REWARD</b>" if st.reward else "—"))
            gate = ("<b style='color:#d35400'>GATE: " + ", ".join(st.gate_reasons) + "</b>") if st.gated else "gate off"
            self.info.setText(
                f"<b>{st.block_label or '—'}</b> ({st.block_kind or '—'}) · block {st.block_index + 1}/{st.n_blocks} · "
                f"left {f(st.block_left_s, '.0f')} s · session left {f(st.session_left_s, '.0f')} s · "
                f"SI {f(st.si_combined)} · thr {f(st.threshold)} · direction {st.direction} · reward rate {rr} · "
                f"{status} · {gate}<br>compute→publish p50 {f(lat.get('p50'), '.2f')} ms, "
                f"p99 {f(lat.get('p99'), '.2f')} ms · frame p99 {f(fr.get('p99'), '.1f')} ms"
                + accuracy_line(pipeline.processor))  # latency helper
            rows = []
            flags = st.quality_flags
            for i, n in enumerate(names):
                fl = flag_names(int(flags[i])) if i < len(flags) else ()
                colour = "#c0392b" if fl else "#27ae60"
                rows.append(f"<span style='color:{colour}'>{n}</span>: rms {spectra.rms_uv[i]:.1f} µV, "
                            f"line {spectra.line_rms_uv[i]:.1f} µV {' '.join(fl)}" if i < len(spectra.rms_uv) else n)
            emg = " ".join(f"{v:.1f}" for v in st.emg_rms_uv)
            self.quality.setText("<b>Signal quality</b><br>" + "<br>".join(rows) + f"<br>EMG rms (µV): {emg}")

    return Console()


class Views:
    """Both views, the frame timer and the keys, driving from ``pipeline.latest``."""

    def __init__(self, pipeline, participant_screen=None):
        QtCore, QtGui, QtWidgets = _qt()
        self.pipeline = pipeline
        self.stats = FrameStats()
        self.spectra = SpectrumWorker(pipeline)
        low = pipeline.processor.protocol.feedback.style == "low-stimulation"
        proto_path = pipeline.processor.protocol.path
        self.participant = make_participant_view(low, self.stats, proto_path.parent if proto_path else None)
        self.console = make_console(pipeline, self.spectra, self.stats)
        self.low_stimulation = low
        self.closing = False
        for w in (self.participant, self.console):
            w.keyPressEvent = self._key
            w.closeEvent = self._close_event
        screens = QtGui.QGuiApplication.screens()
        if participant_screen is not None and 0 <= participant_screen < len(screens):
            self.participant.setGeometry(screens[participant_screen].geometry())
        self.timer = QtCore.QTimer()
        self.timer.setTimerType(QtCore.Qt.PreciseTimer)
        self.timer.timeout.connect(self.frame)
        self.on_finished = None
        self._tick = 0
        self._shown_seq = -1

    def frame(self):
        st = self.pipeline.latest
        self._tick += 1
        if (st.seq or st.signal_lost) and (st.seq != self._shown_seq or self.participant.thermo.easing):
            self._shown_seq = st.seq
            self.participant.show_state(st)
            self.participant.thermo.repaint()  # paint now, before the console's heavier work
        if st.seq and self._tick % CONSOLE_EVERY == 0:
            self.console.show_state(st)
        if not self.pipeline.running and not self.closing:
            self.closing = True
            if self.on_finished:
                self.on_finished()

    def _key(self, event):
        QtCore, _, QtWidgets = _qt()
        key = event.key()
        if key == QtCore.Qt.Key_Space:
            self.pipeline.pause(not self.pipeline.engine.paused)
        elif key == QtCore.Qt.Key_M:
            self.pipeline.marker("operator")
        elif key == QtCore.Qt.Key_Escape:
            ok = self.confirm_end()
            if ok:
                self.stop_session("ended by operator (Esc)")

    def confirm_end(self) -> bool:
        """Ask before ending; tests replace this to answer without a dialog."""
        _, _, QtWidgets = _qt()
        box = QtWidgets.QMessageBox.question(self.console, "End session?",
                                             "End the session now? The recording is closed safely.")
        return box == QtWidgets.QMessageBox.Yes

    def stop_session(self, why="window closed"):
        self.pipeline.stop(why)
        self.closing = True
        self.timer.stop()
        self.spectra.stop()
        for w in (self.participant, self.console):
            w.closeEvent = lambda e: e.accept()
            w.close()
        if self.on_finished:
            self.on_finished()

    def _close_event(self, event):
        event.accept()
        if not self.closing:
            self.stop_session("window closed")

    def start(self):
        self.participant.show()
        self.console.show()
        self.spectra.start()
        self.timer.start(TICK_MS)


def _quiet_offscreen(mode, context, message):
    """Drop the offscreen platform's harmless per-frame 'propagateSizeHints' notice."""
    if "propagateSizeHints" not in message:
        import sys

        sys.stderr.write(message + "\n")


def app():
    """The QApplication (created once)."""
    import pyqtgraph as pg

    QtCore, _, QtWidgets = _qt()
    QtCore.qInstallMessageHandler(_quiet_offscreen)
    a = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    pg.setConfigOptions(antialias=False)
    return a


def run_windows(pipeline, participant_screen=None, seconds=None) -> Views:
    """Start the pipeline and show both views until the session ends (or ``seconds`` pass)."""
    QtCore, _, _ = _qt()
    qapp = app()
    views = Views(pipeline, participant_screen)
    views.on_finished = qapp.quit
    pipeline.start()
    views.start()
    if seconds:
        QtCore.QTimer.singleShot(int(seconds * 1000), lambda: views.stop_session("benchmark complete"))
    qapp.exec()
    views.timer.stop()
    views.spectra.stop()
    pipeline.frame_stats = views.stats.summary()
    pipeline.stop("session complete" if pipeline.engine.finished else "window closed")
    return views


def screenshot(protocol_path, out, seconds: float = 14.5) -> list[Path]:
    """Render both views from a short simulated session offscreen; returns the PNG paths."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from ..protocol.schema import load_protocol
    from ..session import build_session
    from ..sources.simulated import MuSimulator, SimulatedSource, SimulationScript

    proto = load_protocol(protocol_path)
    sched = proto.schedule()
    first = next(i for i, b in enumerate(sched) if b.feedback)
    middle = sum(b.duration_s for b in sched[:first]) + 0.5 * sched[first].duration_s
    scale = seconds / middle  # the picture is taken in the middle of the first feedback block
    script = SimulationScript.alternating(seconds + 10, period_s=4, suppress_s=2, factor=0.5, start_s=1,
                                          emg_every_s=0, blink_every_s=0)
    src = SimulatedSource(MuSimulator(script=script, seed=11), realtime=False,
                          duration_s=seconds)
    pipe, _ = build_session(src, proto, "SHOT", "/tmp", scale, record=False, lsl=False)
    pipe.run()
    app()
    views = Views(pipe)
    views.spectra.compute()
    views.participant.resize(900, 560)
    views.console.resize(1200, 760)
    for _ in range(40):  # let the gentle easing settle
        views.participant.show_state(pipe.latest)
        views.console.show_state(pipe.latest)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = [out.with_name(out.stem + "-participant.png"), out.with_name(out.stem + "-console.png")]
    views.participant.grab().save(str(paths[0]))
    views.console.grab().save(str(paths[1]))
    return paths
