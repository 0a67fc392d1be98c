"""Both windows of a session, driven by its pipeline: the participant view (:mod:`.participant`) and the
clinician console (:mod:`.console`), the frame loop, the operator keys and the end screen.

A new state is painted in the participant view as soon as it is published: the acquisition
thread emits a queued Qt signal (a pipeline sink that does nothing else), and the GUI thread
repaints the bar synchronously (painted and flushed to the window system before anything else
runs), only where it changed. Right after that frame the console is updated (half of its
plots per state), so its painting falls in the gap before the next state instead of in front of
it. One ``QTimer`` at ~60 Hz animates the stimulus (repainting only where the dots were and
are) and eases the bar. No DSP runs here: views read the latest ``FeedbackState``, the state
history and ring-buffer snapshots (spectra come from :class:`SpectrumWorker`).

Operator controls (keys, with hints on the console) go to the engine through
``pipeline.control(name, *args)`` (queued and applied in the acquisition thread, journaled).

Qt is imported when windows are made, not with this module: the command line imports it for
:func:`windows_problem` and :func:`ask_start_anyway` also when no window is shown.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from .controls import EXTEND_S, KEYMAP, NUDGE_SI
from .palette import GENTLE, STANDARD
from .spectra import SpectrumWorker

__all__ = ["EXTEND_S", "GENTLE", "NUDGE_SI", "STANDARD", "FrameStats", "Views", "app", "ask_start_anyway",
           "run_windows", "screenshot", "settle_for_frames", "window_layout", "windows_problem"]

TICK_MS = 16  # the one QTimer (~60 Hz): stimulus animation, bar easing, console; new states wake the GUI themselves
STIMULUS_EVERY = 1  # the stimulus is animated every tick
# after each participant frame, one group of console parts (each plot at half the state rate, e.g.
# 12.5 Hz for 25 states/s), at most every CONSOLE_MIN_S; the timer takes over when states stop
CONSOLE_GROUPS = (("traces", "text"), ("si", "spectrum"))
CONSOLE_MIN_S = 1 / 30
CONSOLE_FALLBACK_S = 0.1


def _qt():
    """Qt's modules, imported when windows are made (this module itself imports no Qt)."""
    from PySide6 import QtCore, QtGui, QtWidgets

    return QtCore, QtGui, QtWidgets


class FrameStats:
    """Publication → painted-and-flushed latency of participant frames (ring of the last 2**16, ms)."""

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


def window_layout(screens, participant_screen=None):
    """Where the two windows go.

    Parameters
    ----------
    screens : list of (x, y, width, height)
        Available geometry of each screen (pixels), primary first.
    participant_screen : int, optional
        Screen for the participant view (default: the second screen when there are two or more).

    Returns
    -------
    dict
        ``{"participant": (x, y, w, h), "participant_fullscreen": bool, "console": (x, y, w, h),
        "warning": str, "screens": {"participant": i, "console": j}}``: on one screen the console (left, 58 %) and the participant view (right)
        tile side by side; with several, the participant view is full screen on its screen and
        the console on the first other screen.
    """
    warning = ""
    n = len(screens)
    if participant_screen is not None and not 0 <= participant_screen < n:
        warning = (f"--participant-screen {participant_screen}: there {'is' if n == 1 else 'are'} {n} "
                   f"screen{'s' if n != 1 else ''} (0..{n - 1}); the windows are tiled instead.")
        participant_screen = None if n < 2 else 1
    if participant_screen is None and n >= 2:
        participant_screen = 1
    if participant_screen is not None and n >= 2:
        console_screen = 0 if participant_screen != 0 else 1
        x, y, w, h = screens[console_screen]
        return {"participant": tuple(screens[participant_screen]), "participant_fullscreen": True,
                "console": (x, y, w, h), "warning": warning,
                "screens": {"participant": participant_screen, "console": console_screen}}
    x, y, w, h = screens[0] if screens else (0, 0, 1600, 900)
    if participant_screen == 0:  # asked for the only screen: full screen there, the console behind it
        return {"participant": (x, y, w, h), "participant_fullscreen": True, "console": (x, y, w, h),
                "warning": warning, "screens": {"participant": 0, "console": 0}}
    cw = int(w * 0.58)
    return {"participant": (x + cw, y, w - cw, h), "participant_fullscreen": False, "console": (x, y, cw, h),
            "warning": warning, "screens": {"participant": 0, "console": 0}}


class Views:
    """Both views, the frame timer and the operator keys, driving from ``pipeline.latest``.

    Parameters
    ----------
    pipeline : Pipeline
    participant_screen : int, optional
        Screen index for the participant view (full screen there); default: the second screen
        when there are two, else both windows tiled side by side on the one screen.
    tone : RewardTone, optional
        Plays the reward tone where the protocol asks for it (default: one is made when
        ``[feedback] tone = true``).

    Attributes
    ----------
    finish : callable, optional
        Called once at the session's natural end, in the GUI thread; returns the session's summary
        (:func:`~neurofeed.live.session.finish_session`), shown on the console's end screen.
    close_after_s : float, optional
        The end screen closes by itself after this many seconds (None: when the operator closes it).
    """

    def __init__(self, pipeline, participant_screen=None, tone="auto", check: dict | None = None):
        self.pipeline = pipeline
        self.stats = FrameStats()
        self.spectra = SpectrumWorker(pipeline)
        self._make_windows(check)
        self.tone = self._reward_tone(tone)
        self.closing = False
        self.ended = False  # the end screen is shown
        self.finish = None
        self.summary = None  # what finish returned
        self.close_after_s = None
        self._connect_operator()
        self.layout = self.place_windows(participant_screen)
        self._connect_frames()
        self.on_finished = None
        self._tick = 0
        self._console_t = 0.0
        self._console_i = 0
        self._shown_seq = -1
        self._recorded_seq = -1
        self._was_reward = False

    def _make_windows(self, check: dict | None) -> None:
        """The participant view (its style, easing and stimulus folder from the protocol) and the console."""
        from .console import Console
        from .participant import ParticipantView

        protocol = self.pipeline.processor.protocol
        fb = protocol.feedback
        self.low_stimulation = fb.style == "low-stimulation"
        self.participant = ParticipantView(self.low_stimulation, protocol.path.parent if protocol.path else None,
                                           on_stimulus=lambda sid: self.stimulus_onset(sid),
                                           easing_s=fb.easing_s, reward_fade_s=fb.reward_fade_s)
        self.console = Console(self.pipeline, self.spectra, self.stats, check=check)

    def _reward_tone(self, tone):
        """``tone``, or for ``"auto"`` a :class:`~.tone.RewardTone` where ``[feedback] tone = true`` (else None)."""
        if tone != "auto":
            return tone
        from .tone import RewardTone

        return RewardTone() if self.pipeline.processor.protocol.feedback.tone else None

    def _connect_operator(self) -> None:
        """Keys and closing either window go to the operator controls; the Delay box to :meth:`pick_delay`."""
        if not _QT_KEY_NAMES:
            _QT_KEY_NAMES.update(_qt_key_names())
        self.console.delay_box.activated.connect(self.pick_delay)  # a pick with the mouse
        for w in (self.participant, self.console):
            w.keyPressEvent = self._key
            w.closeEvent = self._close_event

    def _connect_frames(self) -> None:
        """The frame timer (not started yet: :meth:`start`) and the wake-up at each published state."""
        from .participant import StateWaker

        QtCore, _, _ = _qt()
        self.timer = QtCore.QTimer()
        self.timer.setTimerType(QtCore.Qt.PreciseTimer)
        self.timer.timeout.connect(self.frame)
        # the acquisition thread wakes the GUI thread at each publication (a queued signal), so a
        # new state is painted at once instead of at the next timer tick
        self._waker = StateWaker()
        self._waker.published.connect(self.on_new_state, QtCore.Qt.QueuedConnection)
        self.pipeline.sinks.append(self._waker)

    # layout --------------------------------------------------------------------------------
    def place_windows(self, participant_screen=None) -> dict:
        """Tile the windows on one screen, or the participant view full screen on its own screen."""
        _, QtGui, _ = _qt()
        screens = QtGui.QGuiApplication.screens()
        geo = [s.availableGeometry() for s in screens]
        lay = window_layout([(g.x(), g.y(), g.width(), g.height()) for g in geo], participant_screen)
        if lay["warning"]:
            print(f"neurofeed: {lay['warning']}", file=sys.stderr)
        if screens and any(len(s.virtualSiblings()) < len(screens) for s in screens):
            # separate X screens (a virtual desktop each): a window is put on its screen first, its
            # geometry is then in that screen's own coordinates
            for w, key in ((self.participant, "participant"), (self.console, "console")):
                w.setScreen(screens[lay["screens"][key]])
        self.participant.setGeometry(*lay["participant"])
        x, y, w, h = lay["console"]
        self.console.setGeometry(x, y, w, h)  # its texts wrap and its plots shrink: it never grows past this
        return lay

    # the frame loop ------------------------------------------------------------------------
    def on_new_state(self):
        """The acquisition thread published a state (queued signal): paint it now, then update
        the console (the next state is about one chunk away, so the console's painting, which
        follows in the event loop, does not delay it)."""
        st, now = self.pipeline.latest, time.monotonic()
        self._paint_participant(st, now, False)
        if st.seq and now - self._console_t >= CONSOLE_MIN_S:
            self._update_console(st, now)

    def _update_console(self, st, now):
        self._console_t = now
        for part in CONSOLE_GROUPS[self._console_i % len(CONSOLE_GROUPS)]:
            self.console.show_part(part, st)
        self._console_i += 1

    def frame(self):
        st = self.pipeline.latest
        self._tick += 1
        now = time.monotonic()
        self._paint_participant(st, now, self._tick % STIMULUS_EVERY == 0)
        if self._tick % STIMULUS_EVERY == 0:
            self.participant.stimulus.advance(now)
        if st.seq and now - self._console_t > CONSOLE_FALLBACK_S:  # no new states (signal lost, slow source)
            self._update_console(st, now)
        if not self.pipeline.running and not self.closing and not self.ended:
            if self.pipeline.engine.finished and self.finish is not None:
                self.show_end()  # the natural end: "session complete" and the summary, until closed
                return
            self.closing = True
            if self.on_finished:
                self.on_finished()

    def show_end(self) -> None:
        """The end screen: the participant sees "Session complete"; the console the summary and
        the recording's folder, until it is closed (or ``close_after_s`` have passed)."""
        import io

        from ..live.session import print_summary

        QtCore, _, _ = _qt()
        self.ended = True
        self.timer.stop()
        self.spectra.stop()
        self.pipeline.frame_stats = self.stats.summary()
        self.pipeline.stop("session complete")  # idempotent: the source is closed before the recording
        try:
            self.summary = self.finish()
        except Exception:  # noqa: BLE001 - the windows close; the caller finishes again and reports it
            self.ended = False
            self.closing = True
            if self.on_finished:
                self.on_finished()
            return
        text = io.StringIO()
        print_summary(self.summary, text)
        self.participant.show_end()
        self.console.show_end(text.getvalue(), self.summary.get("recording"), self.close_after_s)
        if self.close_after_s is not None:
            QtCore.QTimer.singleShot(int(1000 * self.close_after_s), self.close_end_screen)

    def close_end_screen(self) -> None:
        """The operator closed the end screen (or its time ran out): both windows go."""
        if self.closing:
            return
        self.closing = True
        for w in (self.participant, self.console):
            w.closeEvent = lambda e: e.accept()
            w.close()
        if self.on_finished:
            self.on_finished()

    def _paint_participant(self, st, now, ease):
        """A new state (or, when ``ease``, the bar still gliding): paint and flush the bar now."""
        part = self.participant
        th = part.thermo
        if (st.seq or st.signal_lost) and (st.seq != self._shown_seq or (ease and th.easing)):
            self._shown_seq = st.seq
            before = th.bar_rect()
            part.show_state(st, now)
            th.repaint(before.united(th.bar_rect()))  # only the bar's old and new extent, flushed now
            if th.painted_seq == st.seq and st.seq != self._recorded_seq and st.published_ns:
                self._recorded_seq = st.seq
                self.stats.add((time.perf_counter_ns() - st.published_ns) / 1e6)
            if self.tone is not None:
                rewarded = st.reward and st.feedback_on and not st.paused
                if rewarded and not self._was_reward:
                    self.tone.play()
                    self.stimulus_onset("tone/reward")  # logged whether or not it was audible
                self._was_reward = rewarded

    # controls ------------------------------------------------------------------------------
    def control(self, name, *args) -> None:
        """Hand an operator control to the engine (queued, journaled; see docs/ARCHITECTURE.md, "Contracts")."""
        self.pipeline.control(name, *args)

    def stimulus_onset(self, stimulus_id: str) -> None:
        """A stimulus appeared on the participant's screen: an event in the recording, the BDF
        annotations and the LSL event outlet (``stimulus/<id>``), through the engine's journal."""
        self.control("stimulus", stimulus_id)

    def toggle_pause(self):
        self.control("pause", not self.pipeline.latest.paused)

    def toggle_schedule(self):
        self.control("pause_schedule", not getattr(self.pipeline.latest, "schedule_paused", False))

    def toggle_lock(self):
        self.control("lock_threshold", not getattr(self.pipeline.latest, "threshold_locked", False))

    def nudge(self, sign: int):
        self.control("nudge_threshold", sign * NUDGE_SI)
        self.console.status_note = f"threshold nudged {sign * NUDGE_SI:+g}"

    def skip_block(self):
        self.control("skip_block")
        self.console.status_note = "block skipped"

    def extend_block(self):
        self.control("extend_block", EXTEND_S)
        self.console.status_note = f"block extended +{EXTEND_S:g} s"

    def select_channel(self, step: int):
        box = self.console.channel_box
        box.setCurrentIndex((box.currentIndex() + step) % box.count())

    def toggle_bad_channel(self):
        name = self.console.channel_box.currentText()
        bad = name not in self.console.bad_channels
        if bad and name in self.pipeline.processor.chain.targets:
            self.console.status_note = f"{name} is a target channel: re-seat it rather than marking it bad"
            return
        self.control("mark_bad_channel", name, bad)
        (self.console.bad_channels.add if bad else self.console.bad_channels.discard)(name)
        after = self.pipeline.processor.engine.baseline_fit is not None  # the baseline was measured with it
        self.console.status_note = f"{name} marked {'bad' if bad else 'good'}" + ("; R re-baselines" if after else "")

    def rebaseline(self):
        """Measure the baseline again now (key R; the running block is cut, journaled)."""
        self.control("rebaseline")
        self.console.status_note = "re-baseline: the baseline is measured again"

    def pick_delay(self, index: int) -> None:
        """Apply the Delay box's item ``index``: the estimator is redesigned at that delay."""
        box = self.console.delay_box
        if not box.isEnabled() or not 0 <= index < box.count():
            name = self.pipeline.processor.chain.estimator_name
            self.console.status_note = (f"the {name} estimator has no designed delay" if name not in ("wcfir", "cfir")
                                        else "the delay designs are offered once the baseline has ended")
            return
        d = float(box.itemData(index))
        if box.currentIndex() != index:
            box.setCurrentIndex(index)
        self.control("set_delay", d)
        self.console.status_note = f"delay design {1000 * d:.0f} ms ({box.itemText(index)})"

    def step_delay(self, step: int) -> None:
        """D: the next design of the participant's curve."""
        box = self.console.delay_box
        self.pick_delay((box.currentIndex() + step) % box.count() if box.count() else -1)

    def add_note(self):
        text = self.ask_note()
        if text:
            self.control("note", text)
            self.console.notes += 1
            self.console.status_note = f"note {self.console.notes} saved"

    def marker(self):
        self.control("marker", "operator")

    # the actions of the shared key map (.controls.KEYS) that take an argument here
    def nudge_up(self):
        self.nudge(+1)

    def nudge_down(self):
        self.nudge(-1)

    def select_previous(self):
        self.select_channel(-1)

    def select_next(self):
        self.select_channel(+1)

    def next_delay(self):
        self.step_delay(+1)

    def _key(self, event):
        QtCore, _, _ = _qt()
        Qt = QtCore.Qt
        if self.ended:  # the end screen: any key closes it (the session is over)
            if event.key() in (Qt.Key_Escape, Qt.Key_Return, Qt.Key_Enter, Qt.Key_Space, Qt.Key_Q):
                self.close_end_screen()
            return
        name = _QT_KEY_NAMES.get(event.key()) or event.text().lower()
        action = KEYMAP.get(name)
        if action is not None:
            getattr(self, action)()
            self.console._text_t = 0.0  # show the effect in the status line at the next text tick

    def end_with_confirmation(self):
        if self.confirm_end():
            self.stop_session("ended by operator (Esc)")

    def ask_note(self) -> str:
        """Ask for a clinician note; tests replace this to answer without a dialog."""
        _, _, QtWidgets = _qt()
        text, ok = QtWidgets.QInputDialog.getText(self.console, "Note", "Clinician note (saved in the recording):")
        return text.strip() if ok else ""

    def confirm_end(self) -> bool:
        """Ask before ending (the default answer is No); tests replace this to answer without a dialog."""
        _, _, QtWidgets = _qt()
        box = QtWidgets.QMessageBox.question(self.console, "End session?",
                                             "End the session now? The recording is closed safely.",
                                             QtWidgets.QMessageBox.Yes | QtWidgets.QMessageBox.No,
                                             QtWidgets.QMessageBox.No)
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
        if self.ended:
            self.close_end_screen()
        elif not self.closing:
            self.stop_session("window closed")

    def start(self):
        self.console.show()
        if self.layout.get("participant_fullscreen"):
            self.participant.showFullScreen()
        else:
            self.participant.show()
        self.spectra.start()
        self.timer.start(TICK_MS)


_QT_KEY_NAMES = {}  # Qt key code -> the shared key map's name of a key that has no text


def _qt_key_names() -> dict:
    QtCore, _, _ = _qt()
    Qt = QtCore.Qt
    return {Qt.Key_Space: "space", Qt.Key_Up: "up", Qt.Key_Down: "down", Qt.Key_Escape: "escape",
            Qt.Key_Plus: "+", Qt.Key_Equal: "=", Qt.Key_Minus: "-", Qt.Key_BracketLeft: "[",
            Qt.Key_BracketRight: "]", **{getattr(Qt, f"Key_{c.upper()}"): c for c in "abcdefghijklmnopqrstuvwxyz"}}


def _quiet_offscreen(mode, context, message):
    """Drop the offscreen platform's harmless per-frame 'propagateSizeHints' notice."""
    if "propagateSizeHints" not in message:
        sys.stderr.write(message + "\n")


def app():
    """The QApplication (created once)."""
    import pyqtgraph as pg

    QtCore, _, QtWidgets = _qt()
    QtCore.qInstallMessageHandler(_quiet_offscreen)
    a = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    pg.setConfigOptions(antialias=False)
    return a


_PROBLEM: list = []  # the platform check's answer, once per process


def windows_problem() -> str | None:
    """None when windows can be shown here; else one line saying why and what to install.

    Checked before the QApplication exists (see :mod:`.qt_platform`), once per process."""
    from PySide6 import QtWidgets

    from .qt_platform import qt_platform_problem

    if QtWidgets.QApplication.instance() is not None:
        return None  # Qt already runs in this process
    if not _PROBLEM:
        _PROBLEM.append(qt_platform_problem())
    return _PROBLEM[0]


def settle_for_frames() -> None:
    """Process settings that keep frame times short, called once everything is built.

    - The objects made so far (numba, scipy, Qt, the pipeline: ~140 000) are moved out of the
      cyclic garbage collector's reach (``gc.freeze``): a full collection would walk them all,
      stopping every thread for ~130 ms; Python runs one whenever the surviving objects have
      grown by a quarter, which an hours-long session reaches. After the freeze it takes µs.
    - The GUI thread waits for the GIL at most 1 ms (not Python's default 5 ms) when the
      acquisition or spectrum thread holds it.
    """
    import gc

    gc.collect()
    gc.freeze()
    sys.setswitchinterval(0.001)


def run_windows(pipeline, participant_screen=None, seconds=None, check: dict | None = None, finish=None,
                close_after_s: float | None = None) -> Views:
    """Start the pipeline and show both views until the session ends (or ``seconds`` pass).

    With ``finish`` (returns the session's summary, see :attr:`Views.finish`) the natural end
    shows the end screen until it is closed, or for ``close_after_s`` seconds; the summary is
    then ``views.summary`` (None when the session did not reach its end).

    Raises
    ------
    NeurofeedError
        Qt cannot open windows here (one line naming the missing system packages).
    """
    from ..core.errors import NeurofeedError

    problem = windows_problem()
    if problem:
        raise NeurofeedError(problem)
    QtCore, _, _ = _qt()
    qapp = app()
    views = Views(pipeline, participant_screen, check=check)
    views.finish, views.close_after_s = finish, close_after_s
    views.on_finished = qapp.quit
    settle_for_frames()
    pipeline.start()
    views.start()
    if seconds:
        QtCore.QTimer.singleShot(int(seconds * 1000), lambda: views.stop_session("benchmark complete"))
    qapp.exec()
    views.on_finished = None
    views.timer.stop()
    views.spectra.stop()
    # QCoreApplication.quit() posts a Quit event; one posted again after exec() returned would end
    # the next event loop of this process at once (a second session, a test's wait) before it runs
    QtCore.QCoreApplication.removePostedEvents(None, QtCore.QEvent.Type.Quit)
    pipeline.frame_stats = views.stats.summary()
    pipeline.stop("session complete" if pipeline.engine.finished else "window closed")
    return views


def screenshot(protocol_path, out, seconds: float = 14.5) -> list[Path]:
    """Render both views from a short simulated session offscreen (the console at its tile's size
    on a 1366x768 screen, :func:`window_layout`); returns the PNG paths."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from ..hardware.sources.simulated import MuSimulator, SimulatedSource, SimulationScript
    from ..live.session import build_session
    from ..protocol.schema import load_protocol

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
    views = Views(pipe, tone=None)
    views.stimulus_onset = lambda sid: None  # nothing is recorded here
    views.spectra.compute()
    views.participant.resize(900, 560)
    views.console.resize(*window_layout([(0, 0, 1366, 768)])["console"][2:])  # its tile on a clinic laptop
    t0 = time.monotonic()
    for i in range(40):  # let a protocol's easing settle (2 s at 20 paints/s)
        views.participant.show_state(pipe.latest, t0 + 0.05 * i)
        views.console.show_state(pipe.latest)
    views.participant.stimulus.advance(t0 + 0.75)  # mid-action: the hand reaching, the walker mid-stride
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = [out.with_name(out.stem + "-participant.png"), out.with_name(out.stem + "-console.png")]
    views.participant.grab().save(str(paths[0]))
    views.console.grab().save(str(paths[1]))
    return paths


def ask_start_anyway(question: str) -> bool:
    """The Qt question before a session starts (default No)."""
    _, _, QtWidgets = _qt()
    app()
    box = QtWidgets.QMessageBox
    answer = box.question(None, "Signal check failed", question + "\n\nStart the session anyway?",
                          box.Yes | box.No, box.No)
    return answer == box.Yes
