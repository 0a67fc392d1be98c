"""The per-chunk DSP chain: quality → conditioning → spatial filter (+ ocular regression) → mu power."""

from __future__ import annotations

import numpy as np
from scipy import signal

from ..core.channels import blink_channels, laplacian_neighbours
from ..core.errors import NeurofeedError
from .conditioning import HIGHPASS_HZ, Conditioner
from .estimators import Estimator, make_estimator
from .kernels import sos_peak_abs, sos_rms_smooth, spatial_apply
from .quality import (
    BLINK,
    BLINK_K,
    EMG,
    EMG_K,
    QualityConfig,
    QualityMonitor,
    fill_gaps,
    fill_hold_samples,
    robust_threshold,
)
from .responses import attenuation_db
from .spatial import spatial_weights

__all__ = ["MuChain", "DC_REJECTION_DB", "LINE_REJECTION_DB", "LINE_BAND_REJECTION_DB", "BETA_REJECTION_DB",
           "OCULAR_BAND_HZ", "concat_chunks"]

#: Required rejection of the whole chain (input → mu power, amplitude dB relative to the band centre).
DC_REJECTION_DB, LINE_REJECTION_DB = 60.0, 40.0
#: ... over the line frequency ± LINE_BAND_HZ and its harmonics below Nyquist (the notch's null is
#: narrow: mains pick-up a little off 50/60 Hz and the estimator's own stop band are what count),
#: and over 20–45 Hz (beta and EMG leaking into mu power). Every uniform (c)FIR design meets these
#: at 100–2048 Hz (worst, the 0-ms design: 26.9 dB and 14.1 dB; 50 ms: 31.2 and 19.1 dB); the
#: fitted wcFIR at the default 50 ms, with its stop-band floor, >= 32.7 dB from 45 Hz up and
#: >= 20 dB at 20–45 Hz on the S001/S02 baselines (benchmarks/stopband.py); without the floor it
#: fell to -6 dB (45–55 Hz) and +43 dB (above 55 Hz) on S02, which this check now refuses.
LINE_BAND_HZ, LINE_BAND_REJECTION_DB = 2.0, 25.0
BETA_BAND_HZ, BETA_REJECTION_DB = (20.0, 45.0), 12.0
_CHECK_STEP_HZ = 0.1  # grid of the band checks
#: Band in which blinks reach the targets (Hz); the regression is fitted from FIT_LOW_HZ up.
OCULAR_BAND_HZ = (0.5, 7.0)
FIT_LOW_HZ = 1.0
#: Seconds at the start of the baseline left out of the fits (the conditioning settling on drift).
SETTLE_S = 2.0
#: Least baseline (s, after SETTLE_S) the ocular regression is fitted on: a few seconds hold one
#: or two blinks, and coefficients fitted on them would subtract EEG along with the blinks (S001:
#: 8–23 blinks a minute, so 10 s hold a few).
MIN_OCULAR_FIT_S = 10.0


class MuChain:
    """Quality monitoring, conditioning, spatial filtering and mu power estimation for one montage.

    Parameters
    ----------
    sfreq : float
        Sampling rate in Hz (100–4096 Hz are supported).
    ch_names : list of str
        The montage (10-10 names), in row order.
    targets : list of str
        Channels whose mu power is estimated (e.g. ``["C3", "C4"]``).
    reference : str
        Spatial reference (see :func:`neurofeed.dsp.spatial.spatial_weights`).
    band_hz : (float, float)
        Mu band in Hz.
    estimator : str
        ``"wcfir"`` (default), ``"cfir"``, ``"iir"``, ``"window"`` or ``"learned"``.
    delay_s : float
        Designed delay for the cFIR estimator.
    smoothing_s : float or None
        Power smoothing time constant (estimator default if None).
    line_hz : float
        Mains frequency (50 or 60 Hz): notched in the conditioning stage.
    quality : QualityConfig
        Artifact caps (``emg_uv``, ``blink_uv``) and gate switches.
    bipolar_pairs, matrix :
        Passed to :func:`spatial_weights`.
    highpass_hz : float
        Corner of the offset/drift high-pass (Hz).
    memory_s : float or None
        Memory limit of a (weighted) cFIR estimator (``[signal] memory_s``; see
        :func:`neurofeed.dsp.estimators.design_cfir`). None: the plain design.

    Notes
    -----
    Order of operations per chunk: non-finite samples are filled (a run of at most
    ``quality.max_fill_samples(sfreq)`` that ends inside the chunk: AR interpolation from both
    sides, ``kernels.ar_interpolate``, flagged ``filled``) or held at the channel's last finite
    value (longer or still open: flagged ``nan``) by the quality stage, each channel is conditioned (offset/drift high-pass + line
    notch, state seeded from its first sample), the spatial weights (reference, minus the
    ocular regression once calibrated) form the target signals, and the estimator turns them
    into mu power. Delay: :attr:`group_delay_s` (conditioning + estimator).

    After :meth:`calibrate`, two detectors run on the target signals: the ocular residual
    (2nd-order Butterworth 7-Hz low-pass of the conditioned, regressed targets; group delay
    33–39 ms at 1–5 Hz) and the EMG-band RMS (the quality monitor's band-pass and 0.1-s smoother).
    Either one re-arms the gate for :attr:`hold_s`. A held gap re-arms it for the estimator's
    memory (:meth:`estimator_memory_s`), a filled one for :attr:`fill_hold_s` (as long as the fill
    measurably disturbs the output, measured on the calibrated baseline).

    At construction (and after each :meth:`retune`) the response from input to mu power is
    checked: DC must be rejected by at least 60 dB and the line frequency by at least 40 dB
    relative to the band centre, or a :class:`NeurofeedError` names the filter and the figure.
    """

    def __init__(self, sfreq, ch_names, targets, reference="raw", band_hz=(8.0, 13.0), estimator="wcfir",
                 delay_s=0.05, smoothing_s=None, line_hz=50.0, quality: QualityConfig | None = None,
                 bipolar_pairs=None, matrix=None, highpass_hz: float = HIGHPASS_HZ, memory_s: float | None = None):
        self.sfreq = float(sfreq)
        self.memory_limit_s = memory_s
        self.ch_names = list(ch_names)
        self.targets = list(targets)
        self.reference = reference
        self.bipolar_pairs = bipolar_pairs
        self.matrix = matrix
        self.estimator_name = estimator
        self.delay_s = delay_s
        self.smoothing_s = smoothing_s
        self.line_hz = line_hz
        self.qcfg = quality or QualityConfig()
        self.bad: set[str] = set()
        self._index = {n: i for i, n in enumerate(self.ch_names)}
        self.conditioner = Conditioner(self.sfreq, len(self.ch_names), line_hz, highpass_hz)
        self.base_weights = self._spatial_weights()
        self.ocular: dict | None = None  # the fitted regression (rows, coefficients), after calibrate()
        self.weights = self.base_weights.copy()
        self.quality = self._make_quality()
        self.estimator: Estimator = self._make_estimator(band_hz)
        # residual ocular gate on the targets (active once the regression is fitted)
        self.resid_sos = signal.butter(2, OCULAR_BAND_HZ[1], btype="lowpass", fs=self.sfreq, output="sos")
        self.resid_zi = np.zeros((len(self.targets), self.resid_sos.shape[0], 2))
        self.resid_peak = np.zeros(len(self.targets))
        self.resid_uv = np.zeros(len(self.targets))
        self.residual_gate = False
        self._resid_seeded = False
        self._ocular_wanted = True
        # EMG measured on the target signals themselves (what feeds the estimator), after calibrate
        q = self.quality
        self.t_emg_zi = np.zeros((len(self.targets), q.emg_sos.shape[0], 2))
        self.t_emg_p = np.zeros(len(self.targets))
        self.target_emg_rms_uv = np.zeros(len(self.targets))
        self.t_emg_uv = np.zeros(len(self.targets))
        self.target_emg_gate = False
        self._cal_conditioned: np.ndarray | None = None  # the conditioned baseline, kept for refits
        self.calibration: dict = {}
        self.baseline_gated = np.zeros(0, dtype=bool)  # per baseline sample, the calibrated gates' verdict
        self._raw = np.zeros((len(self.ch_names), 64))
        self._out = np.zeros((len(self.targets), 64))
        self.last_power = np.zeros(len(self.targets))
        self.gated = False
        self.keep_spatial = False  # set while a baseline is captured (calibration and refit)
        self.fit_refused: str | None = None  # why the last fitted design was not installed (retune)
        # a list while a refit runs off the real-time path: the conditioned chunks (all channels)
        # since the baseline's end, for the refitted estimator to catch up on (install_fit)
        self.keep_conditioned: list | None = None
        self.kept: list[np.ndarray] = []  # referenced target chunks of the baseline
        self.kept_raw: list[np.ndarray] = []  # the same chunks as they arrived (for calibrate)
        self._after_new_estimator()
        self._warm_kernels()

    def _warm_kernels(self) -> None:
        """Compile (or load from numba's cache) the kernels that first run after calibrate(), for
        both layouts the chain hands them, so the end of the baseline does not wait for numba."""
        zi = np.zeros_like(self.t_emg_zi)
        p, r = np.zeros(len(self.targets)), np.zeros(len(self.targets))
        for x in (self._out[:, :1], np.ascontiguousarray(self._out[:, :1])):
            sos_peak_abs(self.resid_sos, x, np.zeros_like(self.resid_zi), r)
            sos_rms_smooth(self.quality.emg_sos, x, zi, 0.5, p, r)

    def describe(self) -> dict:
        """What the chain is, for sidecars and reports: delays (s), response figures (dB),
        the gate hold and, once calibrated, the person's thresholds and ocular coefficients."""
        return {"estimator": self.estimator.describe(), "group_delay_s": self.group_delay_s,
                "conditioning": {"highpass_hz": self.conditioner.highpass_hz, "line_hz": self.line_hz,
                                 "delay_s": self.conditioning_delay_s},
                "response_db": self.response_db, "hold_s": self.hold_s, "fill_hold_s": self.fill_hold_s,
                "bad_channels": sorted(self.bad),
                "calibration": self.calibration}

    # construction helpers ---------------------------------------------------------------------
    def _spatial_weights(self) -> np.ndarray:
        """Reference weights over the full montage with the bad channels left out."""
        bad_targets = [t for t in self.targets if t in self.bad]
        if bad_targets:
            raise NeurofeedError(f"Target channel(s) {', '.join(bad_targets)} cannot be marked bad: "
                                 f"they are what the feedback is computed from.")
        if self.reference == "matrix":
            w = np.array(spatial_weights(self.ch_names, self.targets, "matrix", matrix=self.matrix), dtype=float)
            w[:, [self._index[n] for n in self.bad]] = 0.0
            return np.ascontiguousarray(w)
        good = [n for n in self.ch_names if n not in self.bad]
        wg = spatial_weights(good, self.targets, self.reference, self.bipolar_pairs)
        w = np.zeros((len(self.targets), len(self.ch_names)))
        w[:, [self._index[n] for n in good]] = wg
        return np.ascontiguousarray(w)

    def _make_quality(self) -> QualityMonitor:
        good = [n for n in self.ch_names if n not in self.bad]
        index = self._index
        feeding = sorted(set(np.nonzero(np.abs(self.base_weights).sum(axis=0))[0].tolist()))
        emg_rows = sorted({index[t] for t in self.targets} | {
            index[n] for t in self.targets for n in laplacian_neighbours(t, good)})
        blink_rows = [index[n] for n in blink_channels(good)]
        return QualityMonitor(self.sfreq, len(self.ch_names), emg_rows, blink_rows, feeding, self.qcfg)

    def _make_estimator(self, band_hz) -> Estimator:
        return make_estimator(self.estimator_name, self.sfreq, band_hz, len(self.targets), self.delay_s,
                              self.smoothing_s, self.line_hz, memory_s=self.memory_limit_s)

    def _after_new_estimator(self) -> None:
        """Check the chain's response and set the gate holds from the estimator: after an
        artifact its impulse response, after a held gap its memory, after a filled short gap as
        long as the fill measurably disturbs its output (:meth:`fill_hold_s`)."""
        self.response_db = self.check_response()
        self.quality.set_hold_s(self.estimator.impulse_hold_s(), nonfinite_hold_s=self.estimator_memory_s())
        self.quality.set_fill_hold(self._fill_hold_samples())

    def _fill_hold_samples(self) -> np.ndarray:
        """Gate hold after a filled gap of 1 .. ``max_fill`` samples (samples, index = gap
        length, samples after it): measured for a (c)FIR on the calibrated baseline
        (:func:`fill_hold_samples`, the fill's own errors there); before the calibration, or for
        estimators without taps or with a power smoother, the artifact hold (the estimator's
        impulse response)."""
        q, est = self.quality, self.estimator
        taps = getattr(est, "taps", None)
        if self._cal_conditioned is None or taps is None or getattr(est, "alpha", 1.0) < 1.0:
            return np.full((q.max_fill + 1, q.r_set.size), int(round(q.hold_s * self.sfreq)), dtype=np.int64)
        x = self._cal_conditioned[:, int(round(SETTLE_S * self.sfreq)):]
        return fill_hold_samples(x, self.weights, taps(), self.sfreq, q.max_fill)

    @property
    def fill_hold_s(self) -> list[float]:
        """Seconds the gate stays on after a filled gap of 1 .. ``max_fill`` samples with a
        full model order of samples after it (see :func:`neurofeed.dsp.quality.fill_hold_samples`)."""
        return self.quality.fill_hold_s

    def estimator_memory_s(self) -> float:
        """How long the estimator takes to fill its memory after a (re)start or a step (s): a
        (c)FIR's whole length (its output depends on what came before only while its history
        holds it), a window's length, or four declared delays for a recursive estimator.

        Why not less for a cFIR: the weighted cFIR fitted to a baseline concentrates 99 % of its
        taps' energy in the newest ~0.3 s, but its older taps' gain where the baseline has no
        power (below the conditioning high-pass) turns a start or a step into a transient of
        10²–10⁴ times the baseline power that lasts ~2 s on EEGMMIDB S001R01 (benchmarks/RESULTS.md,
        "Reward rate on real EEG"): the baseline leaves it out, and the gate stays on through it
        after non-finite or gap samples."""
        return float(self.estimator.memory_s())

    # properties -------------------------------------------------------------------------------
    @property
    def band_hz(self):
        """The mu band in use (Hz)."""
        return self.estimator.band_hz

    @property
    def conditioning_delay_s(self) -> float:
        """Group delay of the conditioning stage averaged over the mu band (s), about 1 ms."""
        return self.conditioner.group_delay_s(self.band_hz)

    @property
    def group_delay_s(self) -> float:
        """Declared delay of the chain from electrode sample to mu power (s): conditioning
        (:attr:`conditioning_delay_s`) + the estimator's own declared delay."""
        return self.conditioning_delay_s + self.estimator.group_delay_s

    @property
    def hold_s(self) -> float:
        """Seconds reward stays off after the last gated artifact: the time by which 95 % of the
        estimator's response to an impulse has passed (see ``Estimator.impulse_hold_s``)."""
        return self.quality.hold_s

    # analysis ---------------------------------------------------------------------------------
    def check_response(self) -> dict:
        """Check the response from input to mu power at DC, at the line frequency and over bands.

        Returns
        -------
        figures : dict
            ``dc_db`` and ``line_db``: amplitude rejection (dB, negative) relative to the band
            centre, of the conditioning stage, of the estimator and of the whole chain;
            ``line_band_db`` (line ± ``LINE_BAND_HZ`` and its harmonics below Nyquist) and
            ``beta_db`` (20–45 Hz, from 5 Hz above the band): the chain's worst (largest) gain
            there, with the frequency where it occurs (``*_at_hz``).

        Raises
        ------
        NeurofeedError
            If the chain rejects DC by less than 60 dB, the line frequency by less than 40 dB,
            the line bands by less than 25 dB or 20–45 Hz by less than 12 dB.
        """
        lo, hi = self.band_hz
        fc = 0.5 * (lo + hi)
        nyq = self.sfreq / 2.0
        freqs = [0.0, fc]
        line = self.line_hz if self.line_hz and self.line_hz <= nyq else None
        if line is not None:
            freqs.append(float(line))
        cond = np.abs(self.conditioner.response(freqs))
        est = np.sqrt(self.estimator.power_response(freqs))  # amplitude gain
        figures = {}
        for k, (name, need) in enumerate((("dc", DC_REJECTION_DB), ("line", LINE_REJECTION_DB))):
            if name == "line" and line is None:
                continue
            i = 0 if name == "dc" else 2
            c_db = float(attenuation_db(cond[i], cond[1]))
            e_db = float(attenuation_db(est[i], est[1]))
            total = c_db + e_db
            figures[f"{name}_db"] = {"conditioning": c_db, "estimator": e_db, "chain": total}
            if total > -need:
                what = "DC" if name == "dc" else f"the line frequency {line:g} Hz"
                raise NeurofeedError(
                    f"DSP chain at {self.sfreq:g} Hz rejects {what} by only {-total:.1f} dB relative to {fc:g} Hz "
                    f"(conditioning high-pass {self.conditioner.highpass_hz:g} Hz + notch: {-c_db:.1f} dB, estimator "
                    f"{self.estimator.name}: {-e_db:.1f} dB); at least {need:g} dB is required.")
        ref = float(cond[1] * est[1])
        for name, grid, need, what in self._check_bands(hi, nyq):
            gain = np.abs(self.conditioner.response(grid)) * np.sqrt(self.estimator.power_response(grid))
            db = attenuation_db(gain, ref)
            worst = int(np.argmax(db))
            figures[f"{name}_db"], figures[f"{name}_at_hz"] = float(db[worst]), float(grid[worst])
            if db[worst] > -need:
                raise NeurofeedError(
                    f"DSP chain at {self.sfreq:g} Hz rejects {what} by only {-db[worst]:.1f} dB at {grid[worst]:.1f} Hz "
                    f"relative to {fc:g} Hz (estimator {self.estimator.name}); at least {need:g} dB is required.")
        return figures

    def _check_bands(self, band_hi: float, nyq: float):
        """``(name, grid Hz, required dB, description)`` of the bands :meth:`check_response` scans."""
        out = []
        if self.line_hz:
            parts, k = [], 1
            while k * self.line_hz - LINE_BAND_HZ < nyq:
                f0 = k * self.line_hz
                parts.append(np.arange(f0 - LINE_BAND_HZ, min(f0 + LINE_BAND_HZ, nyq) + 1e-9, _CHECK_STEP_HZ))
                k += 1
            if parts:
                out.append(("line_band", np.concatenate(parts), LINE_BAND_REJECTION_DB,
                            f"the line frequency {self.line_hz:g} Hz ± {LINE_BAND_HZ:g} Hz and its harmonics"))
        b_lo, b_hi = max(BETA_BAND_HZ[0], band_hi + 5.0), min(BETA_BAND_HZ[1], nyq)
        if b_hi > b_lo:
            out.append(("beta", np.arange(b_lo, b_hi + 1e-9, _CHECK_STEP_HZ), BETA_REJECTION_DB,
                        f"{b_lo:g}–{b_hi:g} Hz"))
        return out

    # control ------------------------------------------------------------------------------------
    def retune(self, band_hz, baseline: np.ndarray | None = None, fallback: bool = True) -> None:
        """A fresh estimator for ``band_hz``, fitted to ``baseline`` (targets × samples) if it
        is a fitted kind; its state starts from the next chunk's first sample. The response is
        checked again and the gate hold follows the new estimator.

        A fitted design that fails the response check is not installed: with ``fallback`` the
        unfitted (uniform) design of the same band and delay runs instead, and
        :attr:`fit_refused` says why (a session must not stop at its baseline's end); without
        it (:meth:`redesign`: all or nothing) the failure raises. The unfitted design's own
        failure always raises."""
        self.fit_refused = None
        self.estimator = self._make_estimator(band_hz)
        if baseline is not None and getattr(self.estimator, "needs_fit", False):
            self.estimator.fit(baseline)
            try:
                self._after_new_estimator()
                return
            except NeurofeedError as err:
                if not fallback:
                    raise
                self.fit_refused = str(err)
                self.estimator = self._make_estimator(band_hz)
        self._after_new_estimator()

    def redesign(self, delay_s: float, baseline: np.ndarray | None = None) -> bool:
        """Change the (c)FIR's designed delay mid-session: new taps for ``delay_s`` (fitted to
        ``baseline`` if a fitted kind) that continue from the running estimator's input history,
        so the output stays valid with no start-up transient (see ``CFIREnvelope.take_history``).
        The response is checked again and the gate hold follows the new taps. All or nothing: if
        the new design fails its response check the running one stays and the error is raised.

        Returns
        -------
        continued : bool
            True if the new taps took over the running history (False: they start afresh and
            their first ``estimator_memory_s`` are a start-up transient).
        """
        old, old_delay, old_db = self.estimator, self.delay_s, self.response_db
        try:
            self.delay_s = float(delay_s)
            self.retune(old.band_hz, baseline, fallback=False)  # the new taps, fitted and checked
            take = getattr(self.estimator, "take_history", None)
            continued = bool(take(old)) if take is not None else False
        except Exception:
            self.estimator, self.delay_s, self.response_db = old, old_delay, old_db
            self._after_new_estimator()
            raise
        return continued

    #: What a refit changes in a chain (calibrate, the ocular and target-EMG fits, retune):
    #: taken over by :meth:`install_fit`; everything else (the running filter states) stays.
    _REFIT_FIELDS = ("weights", "ocular", "resid_uv", "residual_gate", "_resid_seeded", "resid_zi", "resid_peak",
                     "t_emg_uv", "t_emg_p", "t_emg_zi", "target_emg_gate", "_cal_conditioned", "_ocular_wanted",
                     "calibration", "baseline_gated", "estimator", "delay_s", "response_db")

    def install_fit(self, fitted: "MuChain", since=()) -> None:
        """Switch to a refit made off the real-time path, at this chunk boundary.

        ``fitted`` is a copy of this chain taken when the baseline ended, then calibrated and
        refitted on the baseline (in a worker); its estimator has run over the baseline. This
        chain takes over its calibration, spatial weights, detector thresholds, gate holds and
        estimator, and keeps its own running states (conditioning, quality monitor). The
        estimator first catches up on ``since``, the conditioned chunks (all channels) this
        chain processed after the baseline ended, read through the new weights: it continues
        exactly as if the refit had been in place at the baseline's end.

        Parameters
        ----------
        fitted : MuChain
        since : list of ndarray (n_channels × n), µV
            Conditioned chunks, in the sizes they were processed (``keep_conditioned``).
        """
        if len(since):  # in one piece: the (c)FIR and IIR run sample by sample, the window keeps its last n
            fitted.estimator.process_inplace(np.ascontiguousarray(fitted.weights @ np.concatenate(since, axis=1)))
        for name in self._REFIT_FIELDS:
            setattr(self, name, getattr(fitted, name))
        q, fq = self.quality, fitted.quality
        q.emg_uv, q.blink_uv, q.gate_mask = fq.emg_uv, fq.blink_uv, fq.gate_mask
        self._take_holds(fitted)
        self.kept, self.kept_raw = [], []

    def install_design(self, redesigned: "MuChain") -> bool:
        """Switch to a new estimator design made off the real-time path (:meth:`redesign` on a
        copy of this chain, e.g. ``copy.copy(chain)`` with its own ``quality`` copy), at this chunk
        boundary: its estimator, designed delay, response figures and gate holds. The new taps
        take over the running estimator's input history now (see ``CFIREnvelope.take_history``).

        Returns
        -------
        continued : bool
            As :meth:`redesign` returns it.
        """
        take = getattr(redesigned.estimator, "take_history", None)
        continued = bool(take(self.estimator)) if take is not None else False
        self.estimator, self.delay_s, self.response_db = (redesigned.estimator, redesigned.delay_s,
                                                          redesigned.response_db)
        self._take_holds(redesigned)
        return continued

    def _take_holds(self, other: "MuChain") -> None:
        """The gate holds ``other``'s estimator set (artifact, held gap, filled gap)."""
        q, oq = self.quality, other.quality
        q._hold, q._nonfinite_hold_samples, q._hold_fill = oq._hold, oq._nonfinite_hold_samples, oq._hold_fill

    def baseline_spatial(self) -> np.ndarray | None:
        """The calibrated baseline as the current spatial weights read it (targets × samples,
        µV), or None before the calibration: what a refit after a change of design must see
        (a channel marked bad since the baseline changes the weights)."""
        if self._cal_conditioned is None:
            return None
        return self.weights @ self._cal_conditioned

    def restart(self) -> None:
        """A new recording starts (e.g. a file replayed after the baseline was taken from another
        one): every filter state seeds again from the next chunk's first sample, as at
        construction; what was fitted (spatial weights, ocular regression, gate thresholds, the
        estimator's taps) stays. The estimator's first ``estimator_memory_s`` after it are a
        start-up transient, as after any start."""
        self.conditioner = self.conditioner.like()
        self.quality.seeded = False
        self.quality._gate_left = 0
        self.estimator.reset()
        self.resid_zi[:] = 0.0
        self.resid_peak[:] = 0.0
        self._resid_seeded = False
        self.t_emg_zi[:] = 0.0
        self.last_power[:] = 0.0
        self.gated = False

    def set_bad_channels(self, names) -> None:
        """Leave ``names`` out of the spatial filter, the gates and the ocular regression (an
        empty list restores every channel). The estimator keeps running, so SI continues.

        Raises
        ------
        NeurofeedError
            If a name is not in the montage, is a target, or leaves the reference without the
            channels it needs (the previous weights stay in force).
        """
        names = set(names)
        unknown = sorted(names - set(self.ch_names))
        if unknown:
            raise NeurofeedError(f"Channel(s) {', '.join(unknown)} not in the montage ({', '.join(self.ch_names)}).")
        old_bad, old_q = self.bad, self.quality
        self.bad = names
        try:
            base = self._spatial_weights()
        except NeurofeedError:
            self.bad = old_bad
            raise
        self.base_weights = base
        self.quality = self._make_quality()
        q = self.quality
        q.seed(old_q.last)  # continue from the held values, no transient
        q.emg_uv, q.blink_uv = old_q.emg_uv, old_q.blink_uv
        q.set_hold_s(old_q.hold_s, old_q._nonfinite_hold_samples / self.sfreq)
        q.set_fill_hold(old_q._hold_fill)
        q.open_run[:] = old_q.open_run
        q.hist[:], q.hist_n[:], q.clean[:] = old_q.hist, old_q.hist_n, old_q.clean  # the fill's past
        self.weights = base.copy()
        self.ocular = None
        self.residual_gate = False
        if self._cal_conditioned is not None:
            self._fit_ocular(self._cal_conditioned)
            self._fit_target_emg(self._cal_conditioned)

    def calibrate(self, baseline_raw, ocular: bool = True) -> dict:
        """Fit the artifact handling to the person, once, at the end of the baseline.

        Sets the EMG and blink thresholds to median + k·MAD of the baseline's own detector
        traces, never above the protocol's caps; where frontal channels exist, fits a regression
        of the targets on them in the ocular band (0.5–7 Hz, Gratton et al. 1983) and subtracts
        it inside the spatial weights, after which frontal blinks no longer gate by themselves
        and only what remains on the targets does. ``self.kept`` (the baseline's target chunks)
        is recomputed with the new weights so the baseline is measured as feedback will be.

        Parameters
        ----------
        baseline_raw : ndarray (n_channels × n_samples, µV) or list of such chunks
            The baseline as it arrived (non-finite samples allowed).
        ocular : bool
            Fit the ocular regression where frontal channels exist (False: thresholds only, and
            frontal blinks keep gating).

        Returns
        -------
        calibration : dict
            ``emg_uv``, ``blink_uv``, ``ocular`` ({target: {frontal: coefficient}} or None),
            ``residual_uv`` (per target) and ``hold_s``.

        References
        ----------
        .. [1] G. Gratton, M. G. H. Coles, E. Donchin, "A new method for off-line removal of
           ocular artifact", Electroencephalogr. Clin. Neurophysiol. 55(4):468–484, 1983.
        """
        chunks = [np.asarray(c, dtype=float) for c in baseline_raw] if isinstance(baseline_raw, (list, tuple)) \
            else [np.asarray(baseline_raw, dtype=float)]
        chunks = [c for c in chunks if c.ndim == 2 and c.shape[1] > 0]
        if not chunks:  # no baseline samples: keep the caps and the reference as they are
            self.kept_raw = []
            return self.calibration
        sizes = [c.shape[1] for c in chunks]
        raw = fill_gaps(concat_chunks(chunks), self.sfreq)
        thr = self.quality.calibrate(raw)
        cond = self.conditioner.like(raw.shape[0])
        conditioned = cond.process_inplace(np.ascontiguousarray(raw.copy()))
        self._cal_conditioned = conditioned
        self._ocular_wanted = bool(ocular)
        self._fit_ocular(conditioned)
        self._fit_target_emg(conditioned)
        if self.kept:
            x = self.weights @ conditioned
            self.kept = np.split(x, np.cumsum(sizes)[:-1], axis=1)
        self.kept_raw = []
        self.baseline_gated = self._replay_gate(chunks)
        self.calibration = {**thr, "ocular": self._describe_ocular(), "residual_uv": self.resid_uv.tolist(),
                            "target_emg_uv": self.t_emg_uv.tolist(), "hold_s": self.hold_s,
                            "baseline_gated_fraction": float(self.baseline_gated.mean())}
        return self.calibration

    def _replay_gate(self, chunks) -> np.ndarray:
        """Which baseline samples the calibrated gates would have closed (bool, n_samples): a
        copy of the calibrated chain run causally over the same chunks, state seeded at the first.
        During the baseline itself only the caps were in force; this is the verdict to exclude
        artifacts from the baseline with."""
        import copy

        probe = copy.copy(self)  # shares the (read-only) designs; the states below are fresh
        probe.keep_spatial = False
        probe.keep_conditioned = None
        probe.quality = copy.deepcopy(self.quality)
        probe.quality.seeded = False
        probe.quality._gate_left = 0
        probe.quality.open_run[:] = 0
        probe.conditioner = self.conditioner.like()
        probe.estimator = copy.deepcopy(self.estimator)
        probe.resid_zi, probe.t_emg_zi = np.zeros_like(self.resid_zi), np.zeros_like(self.t_emg_zi)
        probe.resid_peak, probe.t_emg_p = np.zeros_like(self.resid_peak), self.t_emg_p.copy()
        probe.target_emg_rms_uv = np.zeros_like(self.target_emg_rms_uv)
        probe._resid_seeded = False
        probe._raw, probe._out = np.zeros_like(self._raw), np.zeros_like(self._out)
        probe.last_power = np.zeros_like(self.last_power)
        out = []
        for c in chunks:
            probe.process(c)
            out.append(np.full(c.shape[1], probe.gated))
        return concat_chunks(out, axis=0)

    def _fit_ocular(self, conditioned: np.ndarray) -> None:
        """Regress the targets on the frontal channels in the ocular band; fold into the weights."""
        frontal = [int(r) for r in self.quality.blink_rows if self.ch_names[r] not in self.targets]
        self.weights = self.base_weights.copy()
        if (not frontal or not self._ocular_wanted
                or conditioned.shape[1] < int((SETTLE_S + MIN_OCULAR_FIT_S) * self.sfreq)):
            self.ocular, self.residual_gate = None, False
            self.quality.set_blink_gates(True)
            return
        # fitted at 1–7 Hz, zero-phase (offline, on the baseline): below 1 Hz what is left of the
        # electrode drift after the conditioning high-pass would bias the coefficients; the first
        # 2 s (the conditioning's settling on a drifting electrode) are left out
        bp = signal.butter(4, [FIT_LOW_HZ, OCULAR_BAND_HZ[1]], btype="bandpass", fs=self.sfreq, output="sos")
        sl = slice(int(round(SETTLE_S * self.sfreq)), None)
        f_bp = signal.sosfiltfilt(bp, conditioned[frontal], axis=1)[:, sl]
        t_bp = signal.sosfiltfilt(bp, self.base_weights @ conditioned, axis=1)[:, sl]
        coef, *_ = np.linalg.lstsq(f_bp.T, t_bp.T, rcond=None)  # (n_frontal, n_targets)
        self.weights[:, frontal] -= coef.T
        self.weights = np.ascontiguousarray(self.weights)
        self.ocular = {"rows": frontal, "coef": coef.T}
        # what remains on the targets in the ocular band, causally as live: its own robust threshold
        resid = signal.sosfilt(self.resid_sos, self.weights @ conditioned, axis=1)
        skip = int(round(SETTLE_S * self.sfreq))
        self.resid_uv = np.array([robust_threshold(np.abs(r[skip:]), BLINK_K, self.qcfg.blink_uv) for r in resid])
        self.residual_gate = bool(self.qcfg.blink_uv > 0)
        self._resid_seeded = False
        self.quality.set_blink_gates(False)

    def _fit_target_emg(self, conditioned: np.ndarray) -> None:
        """EMG threshold per target from the baseline's target signals (median + k·MAD of the
        smoothed EMG-band RMS, under the EMG cap); from now on EMG gates on the targets (with the
        reference's common-mode rejection), the per-channel EMG is flagged only."""
        q = self.quality
        if self.qcfg.emg_uv <= 0:
            return
        t = self.weights @ conditioned
        e = signal.sosfilt(q.emg_sos, t, axis=1, zi=q.emg_zi_unit[:, None, :] * t[None, :, 0, None])[0]
        pw = signal.lfilter([q.emg_alpha], [1.0, q.emg_alpha - 1.0], e * e, axis=1)
        skip = int(round(SETTLE_S * self.sfreq))
        self.t_emg_uv = np.array([robust_threshold(np.sqrt(np.maximum(r[skip:], 0)), EMG_K, self.qcfg.emg_uv)
                                  for r in pw])
        self.t_emg_p[:] = pw[:, -1]
        self.target_emg_gate = True
        q.gate_mask &= ~EMG

    def _describe_ocular(self):
        if self.ocular is None:
            return None
        return {t: {self.ch_names[r]: float(c) for r, c in zip(self.ocular["rows"], row)}
                for t, row in zip(self.targets, self.ocular["coef"])}

    # processing ---------------------------------------------------------------------------------
    def conditioned(self, data: np.ndarray) -> np.ndarray:
        """``data`` (n_channels × n_samples µV) held and conditioned offline by a fresh stage
        seeded at its first sample (for fits outside the live loop), a new array."""
        raw = fill_gaps(np.asarray(data, dtype=float), self.sfreq)
        cond = self.conditioner.like(raw.shape[0])
        return cond.process_inplace(np.ascontiguousarray(raw))

    def spatial(self, data: np.ndarray) -> np.ndarray:
        """The referenced, conditioned target signals (n_targets × n_samples) of raw ``data``, a new array."""
        return self.weights @ self.conditioned(data)

    def process(self, data: np.ndarray) -> np.ndarray:
        """Process one chunk of raw EEG (n_channels × n_samples, µV).

        Returns the mu power per target and sample (µV², a view valid until the next call).
        ``self.gated`` tells whether the artifact gate is on, ``self.quality.flags`` the
        per-channel flags. ``data`` is not modified.
        """
        n = data.shape[1]
        if self._raw.shape[1] < n:  # grows once to the largest chunk seen, then reused
            self._raw = np.zeros((self._raw.shape[0], n))
            self._out = np.zeros((self._out.shape[0], n))
        raw = self._raw[:, :n]
        q = self.quality
        gated = q.process(data, raw)  # raw: data with non-finite samples held at the last finite value
        if self.keep_spatial:
            self.kept_raw.append(np.array(data, dtype=np.float64))
        self.conditioner.process_inplace(raw)
        if self.keep_conditioned is not None:
            self.keep_conditioned.append(raw.copy())
        out = self._out[:, :n]
        spatial_apply(self.weights, raw, out)
        extra = 0
        if self.residual_gate:
            if not self._resid_seeded:
                self.resid_zi[:] = out[:, :1, None] * signal.sosfilt_zi(self.resid_sos)[None]
                self._resid_seeded = True
            sos_peak_abs(self.resid_sos, out, self.resid_zi, self.resid_peak)
            for j in range(self.resid_peak.shape[0]):
                if self.resid_peak[j] > self.resid_uv[j]:
                    extra |= BLINK
        if self.target_emg_gate:
            sos_rms_smooth(q.emg_sos, out, self.t_emg_zi, q.emg_alpha, self.t_emg_p, self.target_emg_rms_uv)
            for j in range(self.target_emg_rms_uv.shape[0]):
                if self.target_emg_rms_uv[j] > self.t_emg_uv[j]:
                    extra |= EMG
        if extra:
            gated = q.hold_gate(q.fired | extra, 0)
        self.gated = gated
        if self.keep_spatial:  # the referenced signal, before the estimator overwrites it
            self.kept.append(out.copy())
        self.estimator.process_inplace(out)
        self.last_power[:] = out[:, n - 1]
        return out


def concat_chunks(chunks, axis: int = 1, group: int = 256) -> np.ndarray:
    """``np.concatenate(chunks, axis)`` in groups of ``group``: one call over the 10⁴ chunks of
    a baseline taken in 1-sample chunks holds the GIL ~15 ms, which a refit in a worker thread
    must not (the acquisition thread waits for it); in groups it lets go between calls."""
    chunks = list(chunks)
    if len(chunks) <= group:
        return np.concatenate(chunks, axis=axis)
    return np.concatenate([np.concatenate(chunks[i:i + group], axis=axis) for i in range(0, len(chunks), group)],
                          axis=axis)
