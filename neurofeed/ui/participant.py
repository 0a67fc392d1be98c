"""The participant's window: a calm thermometer with the threshold line, the stimulus, the cue.

This module imports PySide6: it is imported only where windows are shown
(:class:`~neurofeed.ui.display.Views`, the dyad view, tests), never by the command line's parser
or a headless session.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from .easing import EasingClock, eased
from .palette import colours as palette
from .stimuli import StimulusPlayer

__all__ = ["ParticipantView", "StateWaker", "StimulusView", "Thermometer", "blend"]


def blend(a: QtGui.QColor, b: QtGui.QColor, m: float) -> QtGui.QColor:
    """The colour ``m`` of the way from ``a`` (0) to ``b`` (1), per RGB channel."""
    return QtGui.QColor.fromRgbF(a.redF() + (b.redF() - a.redF()) * m, a.greenF() + (b.greenF() - a.greenF()) * m,
                                 a.blueF() + (b.blueF() - a.blueF()) * m)


class Thermometer(QtWidgets.QWidget):
    """The bar: a rounded frame, its fill (``shown``, 0..1) and the dashed threshold line at half height.

    Parameters
    ----------
    colours : dict
        The colour set (:mod:`.palette`).
    """

    def __init__(self, colours: dict):
        super().__init__()
        self.value = 0.5
        self.shown = 0.5  # the eased fill drawn (0..1)
        self.reward = False
        self.mix = 0.0  # 0 = bar colour, 1 = reward colour (eased in gentle mode: no flashing)
        self.colours = colours
        self.easing = False  # still gliding towards the newest value or colour
        self.clock = EasingClock()  # seconds between easing steps
        self.painted_seq = -1
        self.seq = 0
        self.bar_hidden = False  # no bar at all (a block without the bar, the session's end)
        self.setMinimumSize(160, 300)
        # the widget paints every pixel itself: Qt need not clear it first
        self.setAttribute(QtCore.Qt.WA_OpaquePaintEvent)
        self._bg, self._thr = QtGui.QColor(colours["bg"]), QtGui.QColor(colours["thr"])
        self._bar, self._rew = QtGui.QColor(colours["bar"]), QtGui.QColor(colours["reward"])

    def ease_to(self, target: float, reward: bool, now_s: float, easing_s: float, reward_fade_s: float) -> None:
        """Glide the fill towards ``target`` and the colour towards (no) reward, in seconds
        (``easing_s``, ``reward_fade_s``) whatever the frame or packet rate."""
        dt = self.clock.step(now_s)
        goal = 1.0 if reward else 0.0
        self.shown = eased(self.shown, target, dt, easing_s)
        self.mix = eased(self.mix, goal, dt, reward_fade_s)
        self.easing = abs(target - self.shown) > 1e-3 or abs(goal - self.mix) > 1e-3

    def _frame(self):
        w, h = self.width(), self.height()
        bw, top, bottom = min(160, w * 0.4), h * 0.05, h * 0.95
        return bw, top, bottom, (w - bw) / 2

    def bar_rect(self):
        """The part of the widget that changes with the bar (its fill and the lines across it)."""
        bw, top, bottom, x0 = self._frame()
        fill_top = bottom - (bottom - top) * self.shown
        y = int(min(fill_top, bottom - (bottom - top) * 0.5) - 20)  # the threshold line is inside
        return QtCore.QRect(int(x0) - 24, max(0, y), int(bw) + 49, int(bottom) + 4 - max(0, y))

    def paintEvent(self, _event):
        p = QtGui.QPainter(self)
        p.setRenderHint(QtGui.QPainter.Antialiasing)
        bw, top, bottom, x0 = self._frame()
        p.fillRect(self.rect(), self._bg)
        if self.bar_hidden:  # neither frame nor threshold: nothing to look at but the cue
            p.end()
            self.painted_seq = self.seq
            return
        p.setPen(QtGui.QPen(self._thr, 2))
        p.drawRoundedRect(QtCore.QRectF(x0, top, bw, bottom - top), 18, 18)
        fill_h = (bottom - top) * self.shown
        p.setPen(QtCore.Qt.NoPen)
        p.setBrush(blend(self._bar, self._rew, self.mix))
        p.drawRoundedRect(QtCore.QRectF(x0 + 4, bottom - fill_h, bw - 8, max(0.0, fill_h - 4)), 14, 14)
        ythr = bottom - (bottom - top) * 0.5
        p.setPen(QtGui.QPen(self._thr, 3, QtCore.Qt.DashLine))
        p.drawLine(QtCore.QPointF(x0 - 20, ythr), QtCore.QPointF(x0 + bw + 20, ythr))
        p.end()
        self.painted_seq = self.seq


class StimulusView(QtWidgets.QWidget):
    """Draws the current stimulus: point-light dots, or an image scaled once per size.

    Parameters
    ----------
    colours : dict
        The colour set (:mod:`.palette`).
    base_dir : Path, optional
        Folder that a protocol's image folders are relative to.
    on_stimulus : callable, optional
        ``on_stimulus(stimulus_id)`` at every stimulus onset.
    """

    def __init__(self, colours: dict, base_dir: Path | None = None, on_stimulus=None):
        super().__init__()
        self.player = StimulusPlayer(base_dir)
        self.on_stimulus = on_stimulus
        self.setMinimumWidth(200)
        self.setAttribute(QtCore.Qt.WA_OpaquePaintEvent)
        self._bg, self._dot = QtGui.QColor(colours["stim_bg"]), QtGui.QColor(colours["dot"])
        self._panel_bg = QtGui.QColor(colours["bg"])
        self._pix_key, self._pix = None, None
        self._dot_region = None  # where the dots were last painted

    def advance(self, now_s: float) -> None:
        """Move the stimulus to ``now_s``, report onsets and paint what changed (now)."""
        onsets = self.player.advance(now_s)
        for sid in onsets:
            if self.on_stimulus is not None:
                self.on_stimulus(sid)
        if self.player.model is not None and not onsets and self._dot_region is not None:
            # only the dots' old and new places are painted and sent to the window system
            old, new = self._dot_region, self._dots_region()
            self._dot_region = new
            self.repaint(old.united(new))
        elif onsets or (self._dot_region is not None and self.player.model is None):
            self._dot_region = self._dots_region() if self.player.model is not None else None
            self.repaint()

    def _geometry(self):
        w, h = self.width(), self.height()
        return 0.45 * min(w, h), w / 2, h / 2, max(3.0, 0.018 * min(w, h))

    def _dots_region(self):
        s, cx, cy, r = self._geometry()
        reg = QtGui.QRegion()
        k = int(r) + 2
        for x, y in self.player.dots:
            reg = reg.united(QtCore.QRect(int(cx + s * x) - k, int(cy - s * y) - k, 2 * k + 1, 2 * k + 1))
        return reg

    def resizeEvent(self, event):
        self._dot_region = None if self.player.model is None else self._dots_region()
        super().resizeEvent(event)

    def paintEvent(self, _event):
        p = QtGui.QPainter(self)
        pl = self.player
        if pl.model is not None and pl.dots is not None:
            p.fillRect(self.rect(), self._bg)
            p.setRenderHint(QtGui.QPainter.Antialiasing)
            s, cx, cy, r = self._geometry()  # the [-1, 1] box fills 90 % of the shorter side
            p.setPen(QtCore.Qt.NoPen)
            p.setBrush(self._dot)
            for x, y in pl.dots:
                p.drawEllipse(QtCore.QPointF(cx + s * x, cy - s * y), r, r)
        elif pl.image is not None:
            p.fillRect(self.rect(), self._panel_bg)
            self._draw_image(p, pl.image)
        else:
            p.fillRect(self.rect(), self._panel_bg)
        p.end()

    def _draw_image(self, p, image):
        key = (image, self.width(), self.height())
        if key != self._pix_key:  # scale once per image and size, not per frame
            self._pix_key = key
            self._pix = QtGui.QPixmap(str(image)).scaled(self.size(), QtCore.Qt.KeepAspectRatio,
                                                         QtCore.Qt.SmoothTransformation)
        x = (self.width() - self._pix.width()) // 2
        y = (self.height() - self._pix.height()) // 2
        p.drawPixmap(x, y, self._pix)


class ParticipantView(QtWidgets.QWidget):
    """The participant's window: the thermometer, the stimulus and the cue.

    Parameters
    ----------
    low_stimulation : bool
        The gentle colours (the style sets the colours only).
    base_dir : Path, optional
        Folder that the protocol's image folders are relative to.
    on_stimulus : callable, optional
        ``on_stimulus(stimulus_id)`` at every stimulus onset (a built-in action or walk, or an image
        from a folder).
    easing_s, reward_fade_s : float
        The bar glides to each new value with time constant ``easing_s`` (s) and the reward colour
        blends in and out with ``reward_fade_s`` (s): the protocol's ``[feedback]`` settings, in
        seconds whatever the frame rate (:mod:`.easing`; 0 = at once).
    """

    def __init__(self, low_stimulation: bool, base_dir: Path | None = None, on_stimulus=None,
                 easing_s: float = 0.0, reward_fade_s: float = 0.0):
        super().__init__()
        colours = palette(low_stimulation)
        self.easing_s, self.reward_fade_s = easing_s, reward_fade_s
        self.setWindowTitle("neurofeed")
        self.setStyleSheet(f"background:{colours['bg']}; color:{colours['text']};")
        lay = QtWidgets.QHBoxLayout(self)
        self.thermo = Thermometer(colours)
        self.stimulus = StimulusView(colours, base_dir, on_stimulus)
        right = QtWidgets.QVBoxLayout()
        self.cue = QtWidgets.QLabel("")
        self.cue.setWordWrap(True)
        self.cue.setAlignment(QtCore.Qt.AlignCenter)
        f = self.cue.font()
        f.setPointSize(22)
        self.cue.setFont(f)
        right.addWidget(self.stimulus, 3)
        right.addWidget(self.cue, 1)
        lay.addWidget(self.thermo, 1)
        lay.addLayout(right, 2)
        self.resize(900, 560)

    def show_state(self, st, now_s: float | None = None):
        """Show a :class:`~neurofeed.core.state.FeedbackState` at ``now_s`` (``time.monotonic()``;
        default now): the bar eases towards it, the cue and the stimulus follow it."""
        th = self.thermo
        target = st.feedback if st.feedback_on and not st.signal_lost else 0.0
        now = time.monotonic() if now_s is None else now_s
        # in seconds, not per paint: the glide's delay is easing_s whatever the frame or packet rate
        th.ease_to(target, st.reward, now, self.easing_s, self.reward_fade_s)
        th.seq = st.seq
        text = "Paused" if st.paused else ("Signal lost — please wait" if st.signal_lost else st.cue)
        if self.cue.text() != text:
            self.cue.setText(text)
        self.stimulus.player.set_spec(st.stimuli, now)
        # a block without the bar (transfer, rest) after the baseline: no frame, no threshold
        hidden = bool(st.baseline_ready and not (st.feedback_on or st.paused or st.schedule_paused
                                                 or st.signal_lost))
        if hidden != th.bar_hidden:
            th.bar_hidden = hidden
            th.update()  # the whole widget: the frame and the threshold line go or come back

    def show_end(self, now_s: float | None = None):
        """The session is over: a calm "Session complete", no bar, no stimulus, no score."""
        self.thermo.bar_hidden = True
        self.thermo.update()
        self.stimulus.player.set_spec("", time.monotonic() if now_s is None else now_s)
        self.stimulus.update()
        self.cue.setText("Session complete.\nThank you — you can relax now.")


class StateWaker(QtCore.QObject):
    """A pipeline sink (``on_state`` runs in the acquisition thread): one queued signal per
    published state, so the GUI thread paints the participant's frame at once; nothing else
    happens in that thread."""

    published = QtCore.Signal()

    def on_state(self, _state):
        self.published.emit()
