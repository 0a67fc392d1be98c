"""The console's EEG traces as a clinician reads them: display-only conditioning, a scale per
channel (auto or fixed, in µV per division), railed and flat channels drawn as such.

A DC-coupled board (the Cyton's ADS1299) sends tens of mV of electrode offset and a slow drift
on every channel. The traces run the session's own conditioning (the offset/drift high-pass and
mains notch of :class:`neurofeed.dsp.conditioning.Conditioner`, the same design the chain
applies) on a copy of the raw samples, causally, chunk by chunk, with their own state: offsets and
drift vanish from the picture and the processing path is not touched. Delay of the display
filter: the conditioning's group delay, about 1 ms at 8–13 Hz (:meth:`TraceDisplay.delay_s`);
slow waves are drawn later (group delay 30 ms at 2 Hz, 0.13 s at 1 Hz, at 250 Hz and a 50-Hz
notch), as by any causal high-pass.

Each channel has its own lane and scale, in µV per division, one division being the distance
between two lanes' centre lines (so "C3 100 µV" reads: the next lane is 100 µV away). In
``auto`` the scale follows the filtered signal: the smallest step of :data:`AUTO_SCALES_UV` that
keeps the 98th percentile of |x| over the window within half a division and every sample
inside the lane's limits; it goes up at once (a good channel is never clipped) and down only
after the signal has fitted a smaller step with margin (:data:`DOWN_MARGIN`) for
:data:`DOWN_HOLD_S` (no pumping). A fixed scale (:data:`FIXED_SCALES_UV`) is the operator's:
samples beyond the limits are clipped and the lane says so. A channel the
chain's quality monitor flags railed or flat (:data:`neurofeed.dsp.quality.RAILED`,
:data:`~neurofeed.dsp.quality.FLAT`) is drawn as a flat line in its own colour and labelled.
"""

from __future__ import annotations

import numpy as np

from ..dsp.conditioning import HIGHPASS_HZ, Conditioner
from ..dsp.quality import FLAT, RAILED, fill_gaps

__all__ = ["FIXED_SCALES_UV", "AUTO_SCALES_UV", "LANE_DIV", "CLIP_DIV", "DOWN_HOLD_S", "TraceDisplay",
           "make_traces_panel"]

#: The operator's fixed scales (µV per division).
FIXED_SCALES_UV = (10.0, 20.0, 50.0, 100.0, 200.0)
#: The steps the automatic scale chooses from (µV per division): the EEG sensitivity series
#: (1-1.5-2-3-5-7), from 5 µV to coarse steps for large artifacts, so a good channel is drawn
#: whole and fills its lane.
AUTO_SCALES_UV = (5.0, 7.0, 10.0, 15.0, 20.0, 30.0, 50.0, 70.0, 100.0, 150.0, 200.0, 300.0, 500.0, 700.0,
                  1000.0, 1500.0, 2000.0)
#: Distance between two lanes' centre lines, in divisions (the division is the lane spacing).
LANE_DIV = 1.0
#: A sample is drawn at most this many divisions from its lane's centre (it may reach the
#: neighbouring lane's centre line, as on paper EEG, never further); beyond it is clipped.
CLIP_DIV = 1.0
#: Auto: the 98th percentile of |x| over the window fits within this many divisions.
FIT_DIV = 0.5
#: Auto: the largest sample stays within this share of :data:`CLIP_DIV`.
CLIP_FIT = 0.95
#: Auto: a smaller step is taken only when the signal has fitted it with this margin ...
DOWN_MARGIN = 0.8
#: ... for this long (s of signal).
DOWN_HOLD_S = 3.0
#: Percentile of |x| that sets the automatic scale.
PERCENTILE = 98.0
COLOURS = {"railed": "#e74c3c", "flat": "#95a5a6"}


class TraceDisplay:
    """Display filter state, scale and status of the console's EEG lanes (no Qt).

    Parameters
    ----------
    sfreq : float
        Sampling rate (Hz).
    n_rows : int
        Channels shown.
    line_hz : float or None
        Mains frequency notched (the session's).
    highpass_hz : float
        Corner of the offset/drift high-pass (the session's).
    window_s : float
        Seconds shown.
    sos : ndarray, shape (n_sections, 6), optional
        The cascade to apply instead of the design from ``line_hz``/``highpass_hz``
        (:meth:`for_chain` passes the chain's own).

    Notes
    -----
    Each channel has its own :class:`~neurofeed.dsp.conditioning.Conditioner` (state seeded
    from the channel's first sample, so a 20-mV offset gives no start-up transient), so a
    channel that comes back from the rail starts afresh without disturbing the others.
    Non-finite samples (dropped packets) are filled as the chain's quality stage fills them
    (:func:`neurofeed.dsp.quality.fill_gaps`, carried on from the previous chunk's last value).
    Delay: :meth:`delay_s`, about 1 ms at 8–13 Hz.
    """

    def __init__(self, sfreq: float, n_rows: int, line_hz: float | None, highpass_hz: float = HIGHPASS_HZ,
                 window_s: float = 5.0, sos: np.ndarray | None = None):
        self.sfreq = float(sfreq)
        self.n_rows = int(n_rows)
        design = Conditioner(self.sfreq, 1, line_hz, highpass_hz)
        if sos is not None:  # exactly the cascade the session applies
            design.sos = np.array(sos, dtype=float)
        self.filters = [design.like(1) for _ in range(self.n_rows)]  # one design, a state per row
        self.n_window = max(2, int(round(window_s * self.sfreq)))
        self._y = np.zeros((self.n_rows, self.n_window))  # filtered µV, a ring
        self._ts = np.full(self.n_window, np.nan)
        self._end = 0  # next write position in the ring
        self.n = 0  # valid samples in the window
        self._last = np.full(self.n_rows, np.nan)  # each row's last finite raw sample (gap fill)
        self.status = [""] * self.n_rows  # "", "railed" or "flat"
        self.fixed_uv: float | None = None  # None: auto
        self.scale_uv = np.full(self.n_rows, np.nan)  # µV per division in use
        self._down = np.zeros(self.n_rows, dtype=np.int64)  # samples the smaller step has fitted
        self.clipped = np.zeros(self.n_rows, dtype=bool)  # the last drawing clipped a sample

    @classmethod
    def for_chain(cls, chain, n_rows: int, window_s: float = 5.0) -> "TraceDisplay":
        """The display copy of ``chain``'s conditioning (its own design and corner, new state)."""
        c = chain.conditioner
        return cls(c.sfreq, n_rows, c.line_hz, c.highpass_hz, window_s, sos=c.sos)

    @property
    def sos(self) -> np.ndarray:
        """The display filter's cascade (n_sections × 6), the session's conditioning."""
        return self.filters[0].sos

    def delay_s(self, band_hz=(8.0, 13.0)) -> float:
        """Group delay of the display filter averaged over ``band_hz`` (s)."""
        return self.filters[0].group_delay_s(band_hz)

    def describe(self) -> str:
        """One line for the panel: what the display filter does."""
        f = self.filters[0]
        notch = f" + {f.line_hz:g} Hz notch" if f.line_hz and f.line_hz <= self.sfreq / 2 else ""
        return f"display filter {f.highpass_hz:g} Hz high-pass{notch}, {1e3 * self.delay_s():.0f} ms at 8–13 Hz"

    def reset(self) -> None:
        """Forget everything shown (samples were missed): the filters seed again from the next sample."""
        for f in self.filters:
            f.reset()
        self.n = 0
        self._end = 0
        self._last[:] = np.nan

    def set_fixed(self, scale_uv: float | None) -> None:
        """A fixed scale (µV per division) for every channel, or None for auto."""
        self.fixed_uv = None if scale_uv is None else float(scale_uv)
        if self.fixed_uv is None:
            self.scale_uv[:] = np.nan  # auto starts from the signal, not from the operator's choice
            self._down[:] = 0
        if self.n:
            self._rescale(0)  # at once, not at the next samples

    def set_status(self, flags) -> None:
        """Status per row from the chain's quality flags (bitmasks, one per shown row)."""
        for j in range(self.n_rows):
            fl = int(flags[j]) if flags is not None and j < len(flags) else 0
            new = "railed" if fl & RAILED else ("flat" if fl & FLAT else "")
            if self.status[j] == "railed" and new != "railed":
                self.filters[j].reset()  # back from the rail: seed afresh, no step transient
            self.status[j] = new

    def update(self, raw: np.ndarray, ts: np.ndarray | None = None, flags=None) -> None:
        """Filter the new raw samples and append them to the window.

        Parameters
        ----------
        raw : ndarray, shape (n_rows, k)
            The raw samples (µV) not seen before, oldest first; not modified.
        ts : ndarray, shape (k,), optional
            Their timestamps (s); NaN or None: drawn by sample count.
        flags : sequence of int, optional
            The chain's quality flags of the shown rows (latest state).
        """
        if flags is not None:
            self.set_status(flags)
        k = raw.shape[1]
        if k == 0:
            return
        x = np.empty((self.n_rows, k + 1))
        x[:, 0] = self._last
        x[:, 1:] = raw
        if not np.isfinite(x).all():
            x = fill_gaps(x, self.sfreq)  # as the chain fills them: a short gap inside interpolated, one at the end held
        self._last = x[:, -1].copy()
        y = x[:, 1:].copy()
        for j, f in enumerate(self.filters):
            if self.status[j] == "railed":
                f.reset()
                y[j] = 0.0  # drawn flat at the lane's centre, in the railed colour
            else:
                f.process_inplace(y[j:j + 1])
        t = np.full(k, np.nan) if ts is None else np.asarray(ts, dtype=float)
        if k >= self.n_window:
            y, t, k = y[:, -self.n_window:], t[-self.n_window:], self.n_window
        first = min(k, self.n_window - self._end)
        self._y[:, self._end:self._end + first] = y[:, :first]
        self._ts[self._end:self._end + first] = t[:first]
        self._y[:, :k - first] = y[:, first:]
        self._ts[:k - first] = t[first:]
        self._end = (self._end + k) % self.n_window
        self.n = min(self.n_window, self.n + k)
        self._rescale(k)

    def window(self) -> tuple[np.ndarray, np.ndarray]:
        """The filtered window, oldest first: ``(t_s, y_uv)`` with ``t_s`` relative to the newest
        sample (timestamps, or the sample count where a source gives none)."""
        idx = (self._end - self.n + np.arange(self.n)) % self.n_window
        y, ts = self._y[:, idx], self._ts[idx]
        if self.n and np.isfinite(ts[0]) and np.isfinite(ts[-1]):
            t = ts - ts[-1]
        else:
            t = np.arange(1 - self.n, 1, dtype=float) / self.sfreq
        return t, y

    def _rescale(self, k: int) -> None:
        if self.fixed_uv is not None:
            self.scale_uv[:] = self.fixed_uv
            return
        _, y = self.window()
        a = np.abs(y)
        p = np.percentile(a, PERCENTILE, axis=1)
        m = a.max(axis=1)
        steps = np.asarray(AUTO_SCALES_UV)
        for j in range(self.n_rows):
            if self.status[j] == "railed":
                continue
            fits = (p[j] <= FIT_DIV * steps) & (m[j] < CLIP_FIT * CLIP_DIV * steps)
            target = float(steps[np.argmax(fits)]) if fits.any() else float(steps[-1])
            cur = self.scale_uv[j]
            if not np.isfinite(cur) or target > cur:
                self.scale_uv[j] = target  # up at once: a good channel is never clipped
                self._down[j] = 0
                continue
            # down only to a step the signal fits with margin, and only once it has for the hold
            roomy = (p[j] <= DOWN_MARGIN * FIT_DIV * steps) & (m[j] < DOWN_MARGIN * CLIP_FIT * CLIP_DIV * steps)
            lower = float(steps[np.argmax(roomy)]) if roomy.any() else cur
            if lower < cur:
                self._down[j] += k
                if self._down[j] >= DOWN_HOLD_S * self.sfreq:
                    self.scale_uv[j] = lower  # after the hold: no pumping
                    self._down[j] = 0
            else:
                self._down[j] = 0

    def lanes(self) -> tuple[np.ndarray, np.ndarray]:
        """What is drawn: ``(t_s, y_div)``, each row in divisions about its lane's centre
        (row 0 on top, centres ``LANE_DIV`` apart), clipped at ±:data:`CLIP_DIV`; sets
        :attr:`clipped`."""
        t, y = self.window()
        out = np.empty_like(y)
        for j in range(self.n_rows):
            s = self.scale_uv[j] if np.isfinite(self.scale_uv[j]) else AUTO_SCALES_UV[0]
            np.divide(y[j], s, out=out[j])
            self.clipped[j] = bool(np.any(np.abs(out[j]) >= CLIP_DIV)) and self.status[j] != "railed"
            np.clip(out[j], -CLIP_DIV, CLIP_DIV, out=out[j])
            out[j] += self.centre(j)
        return t, out

    def centre(self, j: int) -> float:
        """Centre line of row ``j`` (divisions; row 0 on top)."""
        return LANE_DIV * (self.n_rows - 1 - j)

    def label(self, j: int, name: str) -> str:
        """The lane's label: the channel, and its scale or its status."""
        if self.status[j]:
            return f"{name} {self.status[j]}"
        s = self.scale_uv[j]
        scale = f"{s:g} µV" if np.isfinite(s) else "—"
        return f"{name} {scale}" + (" clip" if self.clipped[j] else "")


def make_traces_panel(display: TraceDisplay, names, plot, rows, ring):
    """The traces panel: ``plot`` (a fixed-range PlotWidget) with one curve per row, above it the
    display filter's description and the scale control (auto, or a fixed µV per division).

    Parameters
    ----------
    display : TraceDisplay
    names : list of str
        Names of the shown rows.
    plot : pyqtgraph.PlotWidget
    rows : list of int
        The shown rows' indices in the ring (and in the quality flags).
    ring : neurofeed.core.buffer.RingBuffer
        The pipeline's raw ring; :meth:`show` reads the samples not seen yet.

    Returns
    -------
    QWidget with ``plot``, ``items`` (the curves), ``scale_box``, ``display`` and ``show(flags)``.
    """
    import pyqtgraph as pg
    from PySide6 import QtCore, QtWidgets

    class TracesPanel(QtWidgets.QWidget):
        def __init__(self):
            super().__init__()
            self.display, self.plot, self.rows, self.names = display, plot, list(rows), list(names)
            box = QtWidgets.QVBoxLayout(self)
            box.setContentsMargins(0, 0, 0, 0)
            head = QtWidgets.QHBoxLayout()
            self.caption = QtWidgets.QLabel(display.describe())
            self.caption.setWordWrap(True)
            head.addWidget(self.caption, 1)
            head.addWidget(QtWidgets.QLabel("Scale (µV/div):"))
            self.scale_box = QtWidgets.QComboBox()
            self.scale_box.addItem("auto", None)
            for s in FIXED_SCALES_UV:
                self.scale_box.addItem(f"{s:g}", s)
            self.scale_box.setFocusPolicy(QtCore.Qt.NoFocus)  # the mouse picks; keys stay the console's
            self.scale_box.currentIndexChanged.connect(lambda i: display.set_fixed(self.scale_box.itemData(i)))
            head.addWidget(self.scale_box)
            box.addLayout(head)
            box.addWidget(plot, 1)
            n = display.n_rows
            plot.setYRange(-LANE_DIV, LANE_DIV * n, padding=0)
            plot.setLabel("bottom", "s")
            self.pens = [pg.mkPen(pg.intColor(i, n)) for i in range(n)]
            self.items = [plot.plot(pen=p) for p in self.pens]
            # ~1250 samples per trace over a few hundred pixels: draw peaks per pixel, not every sample
            plot.setDownsampling(auto=True, mode="peak")
            plot.setClipToView(True)
            self._status = [None] * n
            self._ticks = None
            self._x = np.empty((ring.n_channels, ring.capacity))  # this reader's own copy of new samples
            self._ts = np.empty(ring.capacity)
            self.written = 0

        def show(self, flags=None):
            """Read the new samples, filter them, and draw (flags: the chain's, all channels)."""
            x, ts, total = ring.read_since(self.written, out=self._x, out_ts=self._ts)
            if total - self.written > x.shape[1]:
                display.reset()  # samples were overwritten before this reader saw them
            self.written = total
            fl = None if flags is None or len(flags) == 0 else [int(flags[r]) if r < len(flags) else 0
                                                                for r in self.rows]
            display.update(x[self.rows], ts, fl)
            if display.n < 2:
                return
            t, y = display.lanes()
            for j, item in enumerate(self.items):
                if display.status[j] != self._status[j]:
                    self._status[j] = display.status[j]
                    colour = COLOURS.get(display.status[j])
                    item.setPen(pg.mkPen(colour, width=2, style=QtCore.Qt.DashLine) if colour else self.pens[j])
                item.setData(t, y[j], skipFiniteCheck=True)
            ticks = [(display.centre(j), display.label(j, nm)) for j, nm in enumerate(self.names)]
            if ticks != self._ticks:  # only when a scale or a status changes: no per-frame axis layout
                self._ticks = ticks
                plot.getAxis("left").setTicks([ticks])

    return TracesPanel()
