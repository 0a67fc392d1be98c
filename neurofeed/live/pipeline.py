"""Wires source → ring buffer → DSP chain → engine → sinks, one step per chunk.

The acquisition thread reads the source and, right after each chunk arrives, runs the whole
processing step synchronously and publishes the resulting :class:`FeedbackState`. Nothing
waits for a timer; the GUI only reads ``Pipeline.latest``.
"""

from __future__ import annotations

import copy
import logging
import sys
import threading
import time

import numpy as np

from ..core.buffer import RingBuffer
from ..core.errors import NeurofeedError
from ..core.state import FeedbackState
from ..dsp.accuracy import choose_delay, delay_curves, format_curve, format_effective
from ..dsp.chain import MuChain, concat_chunks
from ..dsp.quality import FLAT, NONFINITE, RAILED, QualityConfig, flag_names
from ..dsp.spatial import explain_reference
from ..dsp.spectra import welch_psd
from ..protocol.engine import CONTROLS, INPUTS, Engine
from ..protocol.schema import Protocol, check_band

log = logging.getLogger(__name__)

SIGNAL_LOST_S = 0.5
MAX_UPDATE_S = 0.1  # the longest stretch of samples one engine update covers (s)
MAX_DESIGN_DELAY_S = 0.25  # set_delay: the longest designed delay a clinician may pick (s)
MIN_DESIGN_DELAY_S = -0.05  # set_delay: the most forecasting design (s; the curve scores down to -40 ms)
CHOOSE_START_DELAY_S = 0.05  # delay_s = "choose": the design used until the baseline's curve picks one
# a baseline with less clean signal than [baseline] min_clean_s is measured again, at most this
# many times in all; then the session ends with the reason (Processor.baseline_refused)
MAX_BASELINE_ATTEMPTS = 3


def keep_memory_flat() -> None:
    """Ask glibc to return large freed buffers to the OS (Linux only; a no-op elsewhere).

    glibc raises its mmap threshold after the first large free, so later multi-MB temporaries
    (the baseline refit's least-squares system) land on the heap and stay in RSS for the rest
    of a session. A fixed 128 kB threshold keeps them mmapped and returned when freed.
    """
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


class Processor:
    """The per-chunk processing of one session: DSP chain + engine (no threads, no I/O).

    Live sessions and replays use this same object, which is what makes replay exact. Every
    input (operator control, external block marker, signal lost, carry-over) goes through
    :meth:`control` between chunks and is logged by the engine as an event at that sample.

    Parameters
    ----------
    protocol : Protocol
    sfreq : float
    ch_names : list of str
    range_uv : float
        Amplifier range; samples at 98 % of it count as railed.
    seconds_scale : float
        Compresses the protocol's block durations (tests and demos).
    external : bool, optional
        Blocks driven by markers/annotations (default: the protocol's marker mode).
    line_hz : float
        Mains frequency to notch (Hz): from ``--line-freq`` or the board config, never the protocol.

    Attributes
    ----------
    reference_used : str
        The first of the protocol's ``[signal] reference`` preferences this montage supports.
    reference_skipped : list of (str, str)
        Preferences passed over, with the reason.
    """

    def __init__(self, protocol: Protocol, sfreq, ch_names, range_uv=187500.0, seconds_scale=1.0, external=None,
                 line_hz: float = 50.0):
        protocol.check_montage(ch_names)
        check_band(protocol, sfreq)
        s, inh = protocol.signal, protocol.inhibits
        self.protocol = protocol
        self.sfreq = float(sfreq)
        self.ch_names = list(ch_names)
        self.line_hz = float(line_hz)
        self.reference_used, _, self.reference_skipped = explain_reference(self.ch_names, s.targets, s.reference,
                                                                           s.bipolar)
        qcfg = QualityConfig(rail_uv=0.98 * range_uv, emg_uv=inh.emg_uv, blink_uv=inh.blink_uv,
                             hold_s=inh.hold_s, gate_railed=inh.railed, gate_flat=inh.flat)
        # delay_s = "choose" starts with the 50-ms design, chosen at the baseline's end
        self.choose_delay = s.delay_s == "choose"
        delay_s = CHOOSE_START_DELAY_S if self.choose_delay else s.delay_s
        self.accuracy_curve: dict = {}  # designed delay (s) -> r on this participant's baseline
        self.effective_delays: dict = {}  # designed delay (s) -> (effective delay (s), r there)
        self.chain = MuChain(sfreq, ch_names, s.targets, self.reference_used, tuple(s.band_hz), s.estimator,
                             delay_s, None, self.line_hz, qcfg, bipolar_pairs=s.bipolar)
        self.engine = Engine(protocol, sfreq, s.targets, seconds_scale, external=external,
                             upstream_delay_s=self._chain_delay_s())
        why = "; ".join(f"{r}: {reason}" for r, reason in self.reference_skipped)
        log.info("reference: %s%s", self.reference_used, f" ({why})" if why else "")
        self.engine.emit(f"reference/{self.reference_used}")
        self.individual = s.band_mode == "individual"
        self.bad_channels: set[str] = set()
        self.baseline_attempts = 0  # baselines refused for too little clean signal so far
        self.baseline_refused: str | None = None  # why the session ended without a baseline (one line)
        self._baseline_flags = np.zeros(len(self.ch_names), dtype=np.int64)  # quality flags seen in the baseline
        # what the participant is shown (state.feedback, state.reward; the live
        # values stay in live_feedback/live_reward); None = the live feedback. An object
        # with shown(state, block_index, samples_in_block, sfreq) -> (feedback, reward) (neurofeed.live.sham) ---
        self.shown_source = None
        # the chain calibrates at the end of every baseline (artifact thresholds, ocular
        # regression folded into the spatial weights), so the baseline is always recomputed
        # with the final weights and estimator (and the delay chosen, for delay_s = "choose")
        self.refit = True
        self.engine.defer_baseline = self.refit
        self.individual_band_hz = None
        self._carried_band = None
        self._since_start = 0  # samples the estimator has seen since it started (or was refitted)
        self._baseline_chunks = None  # (chunk sizes, gated per chunk) of the baseline, once it has ended
        self.delay_history: list = [(0, delay_s)]  # (sample, designed delay s) at each change of design
        self._memory_of, self._memory = None, 0
        # the baseline's refit runs in a worker thread and is switched to at a later chunk boundary
        # (the Pipeline sets this; the replay of a journal that recorded the switch too); False: at
        # once, inside the step that ends the baseline (replays of files, benchmarks, tests)
        self.refit_in_worker = False
        self._job: RefitJob | None = None
        self._warm_up()

    def estimator_memory_samples(self) -> int:
        """How long the estimator takes to fill its memory after a (re)start, in samples (see
        :meth:`neurofeed.dsp.chain.MuChain.estimator_memory_s`); its output before then is a
        start-up transient, left out of the baseline."""
        return int(round(self.chain.estimator_memory_s() * self.sfreq))

    def _chain_delay_s(self) -> float:
        """The chain's declared delay (conditioning + estimator where the chain declares it)."""
        d = getattr(self.chain, "group_delay_s", None)
        return float(d if d is not None else self.chain.estimator.group_delay_s)

    def _warm_up(self) -> None:
        """Compile (or load from numba's cache) every kernel of the step now, on copies, so
        that the first chunk of a session does not wait a second for the compiler. Both array
        layouts a source may hand over (contiguous, and a column slice of a larger array) are
        used, since numba compiles each separately."""
        import copy

        chain, engine = copy.deepcopy(self.chain), copy.deepcopy(self.engine)
        wide = np.zeros((len(self.ch_names), 20))
        for data in (wide[:, :10], np.zeros((len(self.ch_names), 10))):
            power = chain.process(data)
            engine.update(power, False)
        chain.retune(chain.band_hz, baseline=np.random.default_rng(0).standard_normal((len(chain.targets), 500)))
        chain.process(wide[:, :10])

    def step(self, data: np.ndarray) -> FeedbackState:
        """Process one chunk (n_channels × n_samples, µV) and return the new state.

        A chunk is processed in pieces that end at the schedule's block boundaries and last at
        most ``MAX_UPDATE_S``: a board that stalls and then hands over seconds at once (or a fast
        replay) still gets blocks that start and end at their exact samples, and the engine's
        hold, refractory and adaptive threshold keep their usual update granularity. The pieces
        depend only on the chunk and the schedule, so a replay of the same chunks cuts them alike.
        """
        n = data.shape[1]
        limit = max(1, int(MAX_UPDATE_S * self.sfreq))
        pos = 0
        while True:
            cut = n - pos
            to_boundary = self.engine.samples_to_boundary()
            if to_boundary is not None and 0 < to_boundary < cut:
                cut = to_boundary
            cut = min(cut, limit) if cut > limit else cut
            if pos == 0 and cut == n:
                return self._update(data)
            st = self._update(np.ascontiguousarray(data[:, pos:pos + cut]))
            pos += cut
            if pos >= n:
                return st

    def _update(self, data: np.ndarray) -> FeedbackState:
        """One engine update over ``data`` (a chunk or a piece of one)."""
        eng = self.engine
        # keep the referenced baseline to fit the band / the weighted cFIR at its end
        collecting = eng.collecting_baseline
        self.chain.keep_spatial = self.refit and collecting
        block, start = eng.block_index, (eng.blocks[-1].start_sample if eng.blocks else 0)
        power = self.chain.process(data)
        q = self.chain.quality
        if collecting:  # which channels railed, went flat or lost samples: named if the baseline is refused
            np.bitwise_or(self._baseline_flags, q.flags, out=self._baseline_flags)
        if self._memory_of is not self.chain.estimator:  # computed once per estimator (it is retuned at refits)
            self._memory_of, self._memory = self.chain.estimator, self.estimator_memory_samples()
        settling = self._since_start < self._memory
        self._since_start += data.shape[1]
        st = eng.update(power, self.chain.gated, q.gate_reasons, q.flags, q.emg_rms_uv, settling)
        self.finish_pending_baseline()  # this update still belongs to the baseline; SI starts with the next
        if self.shown_source is not None:  # yoked sham: the state is not yet published, so set it here
            # the block these samples belong to is the one running when the chunk began (feedback_on's too)
            st.feedback, st.reward = self.shown_source.shown(st, block, st.sample_index - start, self.sfreq)
        return st

    # -- inputs -------------------------------------------------------------------------------
    def control(self, name: str, *args) -> None:
        """Apply one input now (between chunks): an operator control of docs/ARCHITECTURE.md, "Contracts"
        (``pause``, ``pause_schedule``, ``marker``, ``note``, ``lock_threshold``,
        ``nudge_threshold``, ``skip_block``, ``extend_block``, ``mark_bad_channel``, ``stimulus``,
        ``set_delay``, ``rebaseline``) or one of
        the pipeline's own inputs (``block_marker`` (onset_sample, label), ``signal_lost`` (bool),
        ``stop`` (why), ``carry`` (dict)). The engine logs it as an event at this sample."""
        if name not in INPUTS:
            raise NeurofeedError(f"Unknown control {name!r}; expected one of {', '.join(INPUTS)}.")
        if name == "apply_refit":
            self.apply_refit()
            return
        if name in ("mark_bad_channel", "set_delay", "carry", "stop", "rebaseline"):
            self.apply_refit()  # these act on the refitted chain (or end the session): switch to it first
        # an input that may be refused is logged first and the refusal derived from it, so that
        # a replay of the journal refuses it again
        if name == "mark_bad_channel":
            self.engine.emit(f"{'bad' if (args[1] if len(args) > 1 else True) else 'good'}_channel/{args[0]}")
            self._refusable(name, args, lambda: self.mark_bad_channel(*args, log_event=False))
        elif name == "set_delay":
            try:
                value = float(args[0])
            except (TypeError, ValueError):
                value = float("nan")  # journaled as nan: refused now and on replay
            self.engine.emit(f"set_delay/{value!r}")
            self._refusable(name, args, lambda: self.set_delay(value))
        elif name == "rebaseline":
            self.engine.emit("rebaseline")
            self._refusable(name, args, self.rebaseline)
        elif name == "carry":
            self.carry(*args)
        elif name == "signal_lost":
            self.engine.set_signal_lost(*args)
        else:
            getattr(self.engine, name)(*args)
        self.finish_pending_baseline()

    def _refusable(self, name: str, args, apply) -> None:
        """Run ``apply()``; a :class:`NeurofeedError` is logged and journaled as
        ``control_refused/<name>/<why>`` instead of raised (the session goes on)."""
        try:
            apply()
        except NeurofeedError as err:
            log.error("control %s%r refused: %s", name, args, err)
            self.engine.emit(f"control_refused/{name}/{err}")

    def finish_pending_baseline(self) -> None:
        """If an input (a block marker, a skip, a stop) has just ended the baseline between two
        chunks, fit the estimator and the baseline now, so the next chunk already goes through
        the refitted estimator with an unbroken history and gets its SI (the internal schedule
        ends the baseline inside ``step``, at its last sample)."""
        if self.engine.baseline_pending and self._job is None:
            self._refit_after_baseline()

    @property
    def refit_pending(self) -> bool:
        """True while a refit computed in the worker has not been switched to yet."""
        return self._job is not None

    def refit_ready(self) -> bool:
        """True when a refit running in the worker is done and waits to be switched to (the
        Pipeline then applies it with ``control("apply_refit")`` between two chunks)."""
        return self._job is not None and self._job.done.is_set()

    def apply_refit(self) -> None:
        """Switch to the refit the worker computed, at this chunk boundary (an input: it is
        journaled as ``refit_applied/<kind>`` at this sample, and a replay switches at the same
        sample). Waits for the worker if it is still running (a replay, or an input that needs
        the refit in place first); nothing to do when no refit is pending."""
        job, self._job = self._job, None
        if job is None:
            return
        self.engine.emit(f"refit_applied/{job.kind}")
        job.wait()
        since = self.chain.keep_conditioned or []
        self.chain.keep_conditioned = None
        if isinstance(job.error, NeurofeedError) and job.refusable:  # refused now, and again on replay
            log.error("control %s refused: %s", job.refusable, job.error)
            self.engine.emit(f"control_refused/{job.refusable}/{job.error}")
            return
        if job.error is not None:
            raise job.error
        job.apply(job.result, since)

    def mark_bad_channel(self, name: str, bad: bool = True, log_event: bool = True) -> None:
        """Mark a channel bad (or good again): the spatial filter is recomputed without it and
        the SI goes on. A target channel cannot be marked bad (its SI would have no signal)."""
        bad = bool(bad)
        if name not in self.ch_names:
            raise NeurofeedError(f"mark_bad_channel: {name!r} is not in the montage ({', '.join(self.ch_names)}).")
        if bad and name in self.chain.targets:
            raise NeurofeedError(f"mark_bad_channel: {name} is a target channel; its SI needs it "
                                 f"(end the session or re-seat the electrode).")
        new = (self.bad_channels | {name}) if bad else (self.bad_channels - {name})
        changed = new != self.bad_channels
        self.chain.set_bad_channels(sorted(new))  # raises if the reference cannot do without it
        self.bad_channels = new
        if log_event:
            self.engine.emit(f"{'bad' if bad else 'good'}_channel/{name}")
        if not changed:
            return
        what = f"{name} marked {'bad' if bad else 'good'}"
        if self.engine.collecting_baseline:
            # what was collected went through the old spatial filter and gates (a railed neighbour
            # gates all of it, or leaks into the Laplacian): none of it is kept
            log.warning("%s during the baseline: the baseline starts again", what)
            self._since_start = 0  # the estimator's memory holds the old filter's output
            self._restart_baseline(what)
        elif self.engine.baseline_fit is not None:
            log.warning("%s after the baseline: the baseline in force was measured with the old channels; "
                        "re-baseline (R) to measure it again", what)
            self.engine.emit(f"rebaseline_offered/{name}")

    def rebaseline(self) -> None:
        """Measure the baseline again from now (the ``rebaseline`` control, key R; see
        :meth:`~neurofeed.protocol.engine.Engine.baseline_again`): e.g. after a channel was marked
        bad once the baseline had been measured with it. The thresholds follow the new baseline,
        which also replaces a carried-over one (``[baseline] carry``).

        Raises
        ------
        NeurofeedError
            The protocol has no baseline block, or the session has ended.
        """
        label = self.protocol.baseline.block
        if self.engine.finished:
            raise NeurofeedError("rebaseline: the session has ended.")
        if label not in [b.label for b in self.protocol.blocks] and not self.engine.external:
            raise NeurofeedError(f"rebaseline: the protocol has no baseline block {label!r} ([baseline] block).")
        self._restart_baseline("rebaseline", drop_carry=True)

    def _restart_baseline(self, why: str, drop_carry: bool = False) -> None:
        """Forget the baseline collected so far (the chain's kept samples too) and measure it again."""
        self.chain.kept, self.chain.kept_raw = [], []
        self._baseline_flags[:] = 0
        self.engine.baseline_again(why, drop_carry)

    def _baseline_shortfall(self, fit, n_samples: int, memory_s: float) -> str | None:
        """Why a measured baseline (``fit``, ``n_samples`` long) is refused, or None.

        Refused: less clean signal (gate open, estimator settled) than ``[baseline] min_clean_s``.
        Judged only on the internal schedule (with external markers the marker source decides
        when the baseline runs; replays judge it themselves), when no carried-over baseline is in
        force, and when the baseline was long enough to give it after the estimator's settling:
        ``protocols check`` judges the schedule's length, and a session compressed by
        ``--seconds-scale`` (a demo, a test) is too short to judge (the gate's holds and the
        estimator's memory are not compressed with it).
        """
        if self.engine.external or self.engine.carried is not None:
            return None
        need = self.protocol.baseline.min_clean_s
        length_s = n_samples / self.sfreq
        if length_s - memory_s + 1e-9 < need or fit.clean_s + 1e-9 >= need:
            return None
        seen = []
        for n, f in zip(self.ch_names, self._baseline_flags.tolist()):
            bits = f & (RAILED | FLAT | NONFINITE)
            if bits & RAILED:
                bits &= ~FLAT  # a channel pinned at the rail is flat too; the rail says why
            if bits and n not in self.bad_channels:
                seen.append(f"{n} {'/'.join(flag_names(bits))}")
        return (f"the baseline held {fit.clean_s:.1f} s of clean signal in {length_s:.1f} s (the artifact gate "
                f"closed for {fit.excluded_s:.1f} s{'; ' + ', '.join(seen) if seen else ''}), less than the "
                f"{need:g} s needed ([baseline] min_clean_s)")

    def _refuse_baseline(self, why: str) -> None:
        """A baseline with too little clean signal: measured again, or after
        ``MAX_BASELINE_ATTEMPTS`` the session ends with the reason."""
        self.baseline_attempts += 1
        if self.baseline_attempts >= MAX_BASELINE_ATTEMPTS:
            self.baseline_refused = (f"no usable baseline in {self.baseline_attempts} attempts: {why}; re-seat "
                                     f"the electrodes that rail or are noisy (or mark a neighbour bad, B) and "
                                     f"start again")
            log.error("%s", self.baseline_refused)
            self.engine.end_without_baseline(f"baseline refused: {why}")
            return
        log.warning("baseline %d of %d refused: %s; measuring it again", self.baseline_attempts,
                    MAX_BASELINE_ATTEMPTS, why)
        self._restart_baseline(f"refused: {why}")

    def carry(self, previous: dict) -> None:
        """Start from a previous session of the participant (see :func:`last_session_carry`):
        its baseline and thresholds (engine), and its individual band (the estimator is retuned
        to it now; the band is not searched again at the end of this session's baseline)."""
        self.engine.carry(previous)
        band = previous.get("band_hz")
        if band and self.individual:
            self._carried_band = (float(band[0]), float(band[1]))
            self.individual_band_hz = self._carried_band
            self.chain.retune(self._carried_band)
            self._since_start = 0

    # -- baseline -------------------------------------------------------------------------------
    def fit_to_baseline(self, x: np.ndarray) -> None:
        """Centre the band on the baseline's mu peak (individual band) and/or fit the weighted
        cFIR to the baseline ``x`` (targets × samples, referenced); the estimator restarts."""
        plan = self._fit_plan(self.chain, x)
        self._take_fit_plan(plan)
        self.chain.retune(plan["band"], baseline=x)

    def _fit_plan(self, chain: MuChain, x: np.ndarray) -> dict:
        """What the baseline ``x`` decides for ``chain``, computed without changing anything
        (safe in a worker): the band (individual band: the mu peak), the participant's
        accuracy/delay curve at 0/20/50/100-ms designs (fit on its first half, scored on the rest;
        ~25 ms for 2 targets × 60 s) and, for ``delay_s = "choose"``, the delay
        :func:`choose_delay` picks."""
        s = self.protocol.signal
        plan = {"band": chain.band_hz, "individual": None, "curve": {}, "effective": {}, "chosen": None,
                "text": None}
        if self.individual and self._carried_band is None:
            plan["band"] = plan["individual"] = individual_band(x, self.sfreq, s.band_hz, s.individual_width_hz)
        if chain.estimator_name not in ("wcfir", "cfir"):
            return plan
        curve, effective = delay_curves(x, self.sfreq, plan["band"], taps_s=chain.estimator.n_taps / self.sfreq,
                                        weighted=chain.estimator_name == "wcfir")
        plan["curve"], plan["effective"] = curve, effective
        if not curve:
            return plan
        text = f"accuracy_curve/{format_curve(curve)} effective: {format_effective(effective)}"
        delay = chain.delay_s
        if self.choose_delay:
            plan["chosen"] = choose_delay(curve, effective)
            delay = plan["chosen"] if plan["chosen"] is not None else delay
            text += f" chosen_delay={1000 * delay:.0f}ms"
        plan["text"] = text
        return plan

    def _take_fit_plan(self, plan: dict) -> None:
        """Log the plan's decisions as events and keep them (band, curve, chosen delay)."""
        band = plan["individual"]
        if band is not None:
            self.individual_band_hz = band
            self.engine.emit(f"individual_band/{band[0]:.2f}-{band[1]:.2f}Hz")
        if not plan["curve"]:
            return
        self.effective_delays = plan["effective"]  # first: the console takes a curve as the sign both are there
        self.accuracy_curve = plan["curve"]
        if plan["chosen"] is not None:
            self.chain.delay_s = plan["chosen"]
            self.delay_history.append((self.engine.n, plan["chosen"]))
        self.engine.emit(plan["text"])

    def _refit_after_baseline(self) -> None:
        """At the end of the baseline: calibrate the artifact handling, centre the band on the
        mu peak (individual band) and/or fit the weighted cFIR to the baseline, and hand the new
        estimator's output over the same samples, in the same chunks, to the engine's baseline
        model. All of it is computed on a copy of the chain (:class:`RefitJob`): in a worker
        thread when ``refit_in_worker`` (the live loop runs on the current chain meanwhile and
        switches at a later chunk boundary, :meth:`apply_refit`), else here and now."""
        chain = self.chain
        kept_raw, kept = chain.kept_raw, chain.kept
        chain.kept_raw, chain.kept = [], []  # handed to the job, not copied
        fitted = copy.deepcopy(chain)
        fitted.keep_conditioned = None

        def compute() -> dict:
            fitted.kept = kept
            fitted.calibrate(kept_raw)  # thresholds + ocular regression; recomputes fitted.kept
            chunks, fitted.kept = fitted.kept, []
            x = concat_chunks(chunks)
            plan = self._fit_plan(fitted, x)
            if plan["chosen"] is not None:
                fitted.delay_s = plan["chosen"]
            fitted.retune(plan["band"], baseline=x)
            sizes = [c.shape[1] for c in chunks]
            # the calibrated gates' verdict on the baseline, per chunk (the caps in force during it gate far more)
            mask, gated = fitted.baseline_gated, None
            if mask.size == x.shape[1]:
                bounds = np.cumsum([0] + sizes)
                gated = [bool(mask[a:b].any()) for a, b in zip(bounds[:-1], bounds[1:])]
            mem = int(round(fitted.estimator_memory_s() * self.sfreq))
            powers, settling = _baseline_powers(fitted.estimator, x, sizes, mem)
            return {"plan": plan, "fitted": fitted, "sizes": sizes, "gated": gated, "n": x.shape[1],
                    "baseline": self.engine.prepare_refit(powers, settling, gated)}

        def apply(res: dict, since) -> None:
            short = self._baseline_shortfall(res["baseline"]["fit"], res["n"], res["fitted"].estimator_memory_s())
            if short is not None:  # nothing of this baseline is taken (its calibration neither)
                self._refuse_baseline(short)
                return
            self._take_fit_plan(res["plan"])
            self.chain.adopt_refit(res["fitted"], since)
            self._baseline_chunks = (res["sizes"], res["gated"])  # for a later change of design (set_delay)
            self.engine.refit_baseline(prepared=res["baseline"])
            # the refitted estimator has seen the baseline and the samples since
            self._since_start = res["n"] + sum(c.shape[1] for c in since)

        self._run_job(RefitJob("baseline", compute, apply))

    def _run_job(self, job: "RefitJob") -> None:
        """In the worker (``refit_in_worker``, while the session runs: switched to later by
        :meth:`apply_refit`), or here and now."""
        if self.refit_in_worker and not self.engine.finished:  # (an ended session has no real-time path left)
            self._job = job
            self.chain.keep_conditioned = []
            job.start()
            return
        job.run()
        if job.error is not None:
            raise job.error
        job.apply(job.result, [])

    # -- the clinician's choice of delay ---------------------------------------------------------
    def set_delay(self, delay_s: float) -> None:
        """The clinician's choice of designed delay (s), e.g. from the participant's curve.

        Applied at once: the (weighted) cFIR is redesigned at ``delay_s`` and continues from the
        running filter's input history (no start-up transient, no gap in the feedback). Before
        the baseline's end the new design runs unfitted and replaces the protocol's ``delay_s``
        (and a ``"choose"`` rule) for the refit at the baseline's end. After it, the new design is
        fitted to this session's baseline (as the current spatial filter reads it) and the
        baseline power is recomputed as the new design reads the baseline; the running
        thresholds (adapted, nudged or locked) are kept: they are in SI units, relative to the
        baseline. Choosing the design already in use changes nothing.

        Raises
        ------
        NeurofeedError
            Not a (c)FIR estimator, or ``delay_s`` outside 0–``MAX_DESIGN_DELAY_S``; nothing is changed.
        """
        try:
            d = float(delay_s)
        except (TypeError, ValueError):
            d = float("nan")
        if self.chain.estimator_name not in ("wcfir", "cfir"):
            raise NeurofeedError(f"set_delay: the {self.chain.estimator_name} estimator has no designed delay "
                                 f"(only wcfir and cfir do).")
        if not (np.isfinite(d) and MIN_DESIGN_DELAY_S <= d <= MAX_DESIGN_DELAY_S):
            raise NeurofeedError(f"set_delay: {delay_s!r} s is not a designed delay; expected {MIN_DESIGN_DELAY_S:g} to "
                                 f"{MAX_DESIGN_DELAY_S:g} s (e.g. -0.01).")
        self.choose_delay = False
        if d == self.chain.delay_s:
            return
        fitted = self._baseline_chunks is not None
        x = None
        if fitted:
            x = self.chain.baseline_spatial()
            if x is None or x.shape[1] != sum(self._baseline_chunks[0]):
                raise NeurofeedError("set_delay: this session's baseline is not available to refit on.")
        # the new taps are designed (and fitted, and the baseline re-read) on a copy of the chain,
        # in the worker when refit_in_worker; the running chain switches to them in apply
        probe = copy.copy(self.chain)
        probe.quality = copy.copy(self.chain.quality)  # redesign sets the gate holds on it
        sizes, gated = self._baseline_chunks or (None, None)

        def compute() -> dict:
            probe.redesign(d, baseline=x)  # all or nothing: raises, and nothing is changed
            out = {"probe": probe, "baseline": None}
            if fitted:
                fresh = copy.deepcopy(probe.estimator)
                fresh.reset()
                mem = int(round(probe.estimator_memory_s() * self.sfreq))
                out["baseline"] = self.engine.prepare_refit(*_baseline_powers(fresh, x, sizes, mem), gated)
            return out

        def apply(res: dict, since) -> None:
            continued = self.chain.adopt_design(res["probe"])  # takes the running history over now
            if not continued:  # cannot happen for the (c)FIR kinds today; if it did, hold its start-up out
                log.warning("set_delay: the new design starts without the running history")
                self._since_start = 0
            self.delay_history.append((self.engine.n, d))
            if res["baseline"] is not None:
                self.engine.refit_baseline(prepared=res["baseline"], keep_thresholds=True)

        self._run_job(RefitJob("set_delay", compute, apply, refusable="set_delay"))

    def summary(self) -> dict:
        """The engine's summary plus what the processor decided (band, bad channels). A refit
        still running when the session ended is waited for and switched to first (its baseline
        belongs in the summary; while the session runs the acquisition thread switches)."""
        if self.engine.finished:
            self.apply_refit()
        self.engine.upstream_delay_s = self._chain_delay_s()  # the design in use now (set_delay, "choose")
        out = self.engine.summary()
        out["delay_s_history"] = [[int(n), float(d)] for n, d in self.delay_history]
        out["individual_band_hz"] = None if self.individual_band_hz is None else list(self.individual_band_hz)
        out["bad_channels"] = sorted(self.bad_channels)
        return out


class RefitJob:
    """A refit computed off the real-time path: ``compute()`` (on copies; in a worker thread or at
    once) returns the result, ``apply(result, since)`` switches the live objects to it between
    two chunks (``since``: the conditioned chunks processed meanwhile).

    Attributes
    ----------
    kind : str
        What is refitted (``"baseline"``, ``"set_delay"``), journaled with the switch.
    refusable : str or None
        The control that asked for it: a :class:`NeurofeedError` from ``compute`` is journaled
        as that control's refusal where the job is applied, instead of raised.
    done : threading.Event
        Set when ``compute`` has returned or raised.
    result, error
        Its return value, or the exception it raised (re-raised where it is applied).
    """

    def __init__(self, kind: str, compute, apply, refusable: str | None = None):
        self.kind, self._compute, self.apply, self.refusable = kind, compute, apply, refusable
        self.result, self.error = None, None
        self.done = threading.Event()
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        try:
            self.result = self._compute()
        except BaseException as err:  # noqa: BLE001 - handed to the thread that applies the job
            self.error = err
        finally:
            self.done.set()

    def start(self) -> None:
        """Run ``compute`` in a daemon worker thread."""
        self._thread = threading.Thread(target=self.run, name=f"neurofeed-refit-{self.kind}", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        """Block until ``compute`` is done."""
        self.done.wait()


def _baseline_powers(estimator, x: np.ndarray, sizes, memory_samples: int):
    """``estimator`` (from its start) over the referenced baseline ``x`` in chunks of ``sizes``:
    (the power per chunk, whether each chunk falls in its start-up of ``memory_samples``)."""
    powers, settling, pos = [], [], 0
    for n in sizes:
        powers.append(estimator.process_inplace(np.ascontiguousarray(x[:, pos:pos + n])).copy())
        settling.append(pos < memory_samples)
        pos += n
    return powers, settling


def last_session_carry(participant_dir, protocol: Protocol, targets) -> dict | None:
    """What ``[baseline] carry = "last"`` takes from the participant's last finished session:
    ``{"source", "baseline_uv2", "thresholds", "band_hz"}`` read from its ``sidecar.json``, or
    None when there is no earlier session with a baseline for these targets."""
    import json
    from pathlib import Path

    folder = Path(participant_dir)
    if not folder.is_dir():
        return None
    for sess in sorted((p for p in folder.iterdir() if p.is_dir()), reverse=True):  # names start with the time
        side = sess / "sidecar.json"
        try:
            doc = json.loads(side.read_text())
        except (OSError, ValueError):
            continue
        base = doc.get("baseline_uv2") or {}
        thr = doc.get("threshold_final") or {}
        if all(t in base for t in targets) and {"up", "down"} <= set(thr):
            return {"source": str(sess), "baseline_uv2": {t: float(base[t]) for t in targets},
                    "thresholds": {"up": float(thr["up"]), "down": float(thr["down"])},
                    "band_hz": doc.get("individual_band_hz")}
    return None


def individual_band(x: np.ndarray, sfreq: float, search_hz, width_hz: float) -> tuple[float, float]:
    """Individual mu band: the peak of the mean Welch spectrum of ``x`` within ``search_hz``, ± ``width_hz``."""
    f, pxx = welch_psd(x, sfreq)
    sel = (f >= search_hz[0]) & (f <= search_hz[1])
    peak = float(f[sel][np.argmax(pxx.mean(axis=0)[sel])])
    return (max(0.5, peak - width_hz), peak + width_hz)


class LatencyProbe:
    """Per-update timing, preallocated so an hour-long session keeps memory flat.

    Keeps the most recent ``capacity`` updates: arrival → published (ms), compute (µs),
    sample age (ms) and the arrival time (s) for the drift fit.
    """

    def __init__(self, capacity: int = 1 << 18):
        self.capacity = capacity
        self.lag_ms = np.zeros(capacity)
        self.compute_us = np.zeros(capacity)
        self.age_ms = np.full(capacity, np.nan)
        self.t_s = np.zeros(capacity)
        self.n = 0

    def add(self, arrival_ns, published_ns, compute_ns, age_s, t0_ns):
        i = self.n % self.capacity
        self.lag_ms[i] = (published_ns - arrival_ns) / 1e6
        self.compute_us[i] = compute_ns / 1e3
        self.age_ms[i] = age_s * 1e3
        self.t_s[i] = (arrival_ns - t0_ns) / 1e9
        self.n += 1

    def _view(self, a):
        return a[: min(self.n, self.capacity)]

    def summary(self) -> dict:
        """Percentiles of each measure, the update cadence and the drift of the lag."""
        if self.n == 0:
            return {"updates": 0}
        lag, comp, age, t = (self._view(a) for a in (self.lag_ms, self.compute_us, self.age_ms, self.t_s))
        pct = lambda a, qs: {f"p{q}": float(np.percentile(a, q)) for q in qs}  # noqa: E731
        out = {"updates": int(self.n),
               # chunk arrival -> FeedbackState published: neurofeed's compute, not what the participant
               # waits for (electrode -> feedback is `neurofeed bench latency`'s)
               "compute_to_publish_ms": {**pct(lag, (50, 95, 99)), "max": float(lag.max())},
               "compute_us": pct(comp, (50, 99))}
        age = age[np.isfinite(age)]
        if age.size:
            out["sample_age_ms"] = pct(age, (50, 99))
        if t.size > 20 and t.max() > t.min():
            out["update_hz"] = float((t.size - 1) / (t.max() - t.min()))
            # slope of the lag over the run, fitted to the medians of ten stretches so that a
            # single slow update (a refit, a GC pause) does not pose as drift
            order = np.argsort(t)
            parts = np.array_split(order, 10)
            tm = np.array([np.median(t[p]) for p in parts])
            lm = np.array([np.median(lag[p]) for p in parts])
            out["drift_ms_per_hour"] = float(np.polyfit(tm - tm.min(), lm, 1)[0] * 3600.0)
        return out


class StateHistory:
    """The last ``capacity`` updates' time, combined SI, threshold and reward, for the console
    (written in the acquisition thread into preallocated arrays; read by the GUI)."""

    def __init__(self, capacity: int = 4096):
        self.t_s = np.full(capacity, np.nan)
        self.si = np.full(capacity, np.nan)
        self.threshold = np.full(capacity, np.nan)
        self.reward = np.zeros(capacity)
        self.n = 0

    def add(self, st) -> None:
        i = self.n % self.t_s.size
        self.t_s[i], self.si[i], self.threshold[i], self.reward[i] = st.t_s, st.si_combined, st.threshold, st.reward
        self.n += 1

    def ordered(self):
        """(t, si, threshold, reward) oldest first."""
        k = self.n % self.t_s.size
        idx = np.r_[k:self.t_s.size, 0:k] if self.n >= self.t_s.size else np.arange(self.n)
        return self.t_s[idx], self.si[idx], self.threshold[idx], self.reward[idx]


class Pipeline:
    """Runs a source through a :class:`Processor` in an acquisition thread.

    Parameters
    ----------
    source : Source
    processor : Processor
    sinks : list
        Objects with ``on_chunk(chunk)``, ``on_state(state)`` and ``on_events(events)``
        (any may be absent), called in the acquisition thread: keep them short.
    buffer_s : float
        Seconds of raw data kept in the ring buffer for the display.
    marker_inlet : object, optional
        External marker stream for external-marker protocols: ``pull_stamped() -> [(label,
        lsl_timestamp)]`` (markers start blocks at the sample they were stamped at), or
        ``pull_onsets() -> [(onset_sample, label)]`` (a file's annotations), or ``pull() ->
        [label]`` (applied where polled). ``"end"`` ends the running block.
    busy_poll : bool
        Spin (yielding the GIL) instead of napping 0.5 ms between polls: a new sample is picked
        up within ~0.1 ms, at the price of one core.
    """

    def __init__(self, source, processor: Processor, sinks=(), buffer_s: float = 10.0, marker_inlet=None,
                 busy_poll: bool = False):
        self.source = source
        if busy_poll:
            source.poll_s = 0.0
        self.processor = processor
        # the baseline's refit never stalls acquisition from a real-time source (a board, a stream);
        # a source read as fast as it goes (a file, a simulation) has no real-time path to keep
        processor.refit_in_worker = bool(getattr(source, "realtime", True))
        self.engine = processor.engine
        self.sinks = list(sinks)
        self.ring = RingBuffer(len(source.ch_names), int(buffer_s * source.sfreq))
        self.latest: FeedbackState = FeedbackState(targets=tuple(processor.chain.targets))
        self.probe = LatencyProbe()
        self.history = StateHistory()
        self.marker_inlet = marker_inlet
        self.error: BaseException | None = None
        self.lost_events = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pending: list = []  # control calls from other threads, applied between chunks
        self._markers: list = []  # external block markers (onset_sample, label) not yet due
        self._lsl_offset_s = None  # pylsl.local_clock() - time.perf_counter(), for marker timestamps
        self._last_sample_s = None  # perf_counter time of the newest processed sample
        self.t0_ns = 0
        self.published = 0
        self.blinded = False  # a blinded trial session; views hide the live SI

    # controls, safe from any thread -------------------------------------------------------
    def control(self, name: str, *args) -> None:
        """Queue an operator control; it is applied in the acquisition thread before the next
        chunk and journaled at that sample. Safe from any thread.

        Names and arguments (docs/ARCHITECTURE.md, "Contracts"): ``pause`` (bool), ``pause_schedule`` (bool),
        ``marker`` (text), ``note`` (text), ``lock_threshold`` (bool), ``nudge_threshold``
        (delta_si: float), ``skip_block`` (), ``extend_block`` (seconds: float),
        ``mark_bad_channel`` (name: str, bad: bool = True), ``stimulus`` (id), ``set_delay``
        (seconds: the estimator's designed delay, see :meth:`Processor.set_delay`), ``rebaseline``
        () (see :meth:`Processor.rebaseline`).

        Raises
        ------
        NeurofeedError
            Unknown name or wrong number of arguments (at once, in the caller's thread).
        """
        if name not in CONTROLS:
            raise NeurofeedError(f"Unknown control {name!r}; expected one of {', '.join(CONTROLS)}.")
        lo, hi = CONTROLS[name]
        if not lo <= len(args) <= hi:
            raise NeurofeedError(f"Control {name!r} takes {lo}{'' if lo == hi else f'–{hi}'} argument(s), "
                                 f"got {len(args)}: {args!r}.")
        with self._lock:
            self._pending.append((name, args))

    def pause(self, paused: bool) -> None:
        """Shorthand for ``control("pause", paused)``."""
        self.control("pause", paused)

    def marker(self, text: str = "marker") -> None:
        """Shorthand for ``control("marker", text)``."""
        self.control("marker", text)

    # lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the source and the acquisition thread."""
        keep_memory_flat()
        # a thread waiting for the GIL (acquisition, behind the GUI's painting) asks
        # for it after this interval; 0.5 ms instead of CPython's 5 ms cut the emulated Cyton's sample
        # wait p99 from 118 to 20 ms with the display on (benchmarks/RESULTS.md, "Electrode to feedback") ---
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.0005))
        self.source.start()
        self.t0_ns = time.perf_counter_ns()
        self._thread = threading.Thread(target=self._run, name="neurofeed-acquisition", daemon=True)
        self._thread.start()

    def stop(self, why: str = "stopped by operator") -> None:
        """Stop acquisition, end the session and close the source (idempotent)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        if not self.engine.finished:
            self.processor.control("stop", why)
            self._dispatch_events()
        self.source.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the session to end by itself; True if it did."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def run(self) -> None:
        """Start, wait until the protocol or source ends (or Ctrl-C), then stop."""
        self.start()
        try:
            while self.running:
                self._thread.join(0.2)
        except KeyboardInterrupt:
            self.stop("interrupted (Ctrl-C)")
            return
        self.stop("session complete")

    def _dispatch_events(self) -> None:
        events = self.engine.drain_events()
        if events:
            for s in self.sinks:
                fn = getattr(s, "on_events", None)
                if fn:
                    fn(events)

    def _apply_pending(self) -> None:
        if self._pending:
            with self._lock:
                pending, self._pending = self._pending, []
            for name, args in pending:
                self.processor.control(name, *args)

    def _poll_markers(self) -> None:
        """External block markers: each is mapped to the sample it was stamped at (its LSL
        timestamp against the newest processed sample's acquisition time) and applied at the
        first chunk boundary at or after that sample."""
        inlet, eng = self.marker_inlet, self.engine
        if hasattr(inlet, "pull_onsets"):  # a file's annotations: onsets already in samples
            self._markers.extend(inlet.pull_onsets())
        elif hasattr(inlet, "pull_stamped"):
            for label, ts in inlet.pull_stamped():
                self._markers.append((self._onset_sample(ts), label))
        else:
            self._markers.extend((eng.n, m) for m in inlet.pull())
        self._markers.sort(key=lambda m: m[0])  # stable: markers stamped alike keep their order
        while self._markers and self._markers[0][0] <= eng.n:
            onset, label = self._markers.pop(0)
            self.processor.control("block_marker", int(onset), label)

    def _onset_sample(self, ts_lsl: float) -> int:
        """The sample index an LSL timestamp falls on (host LSL clock)."""
        eng = self.engine
        if self._last_sample_s is None:
            return eng.n
        if self._lsl_offset_s is None:
            import pylsl

            self._lsl_offset_s = pylsl.local_clock() - time.perf_counter()
        behind_s = self._last_sample_s + self._lsl_offset_s - ts_lsl  # > 0: stamped before the newest sample
        return max(0, eng.n - 1 - int(round(behind_s * eng.sfreq)))

    def _run(self) -> None:
        src, proc, eng = self.source, self.processor, self.engine
        chunk_sinks = [s.on_chunk for s in self.sinks if hasattr(s, "on_chunk")]
        state_sinks = [s.on_state for s in self.sinks if hasattr(s, "on_state") and not getattr(s, "publish_first", False)]
        # sinks that carry the participant's feedback (the LSL feedback outlet) get
        # each state right after publication, before the ring, the recorder and the history ---
        first_sinks = [s.on_state for s in self.sinks if hasattr(s, "on_state") and getattr(s, "publish_first", False)]
        last_data = time.perf_counter_ns()
        lost = False
        # the protocol's session limit in wall-clock time too: a real-time source whose signal is lost
        # delivers no samples to count, and the session must still end (and its recording close)
        limit_ns = eng.max_samples / eng.sfreq * 1e9 if eng.max_samples and getattr(src, "realtime", True) else None
        try:
            while not self._stop.is_set() and not eng.finished:
                self._apply_pending()
                if proc.refit_ready():  # switch to the worker's refit here, at a chunk boundary (journaled)
                    proc.control("apply_refit")
                if self.marker_inlet is not None:
                    self._poll_markers()
                chunk = src.read()
                if chunk is None:
                    if src.finished:
                        break
                    if limit_ns is not None and time.perf_counter_ns() - self.t0_ns >= limit_ns:
                        log.warning("session limit reached (%.1f min of wall-clock time); ending the session",
                                    limit_ns / 60e9)
                        proc.control("stop", "session limit reached (wall clock)")
                        break
                    if not lost and time.perf_counter_ns() - last_data > SIGNAL_LOST_S * 1e9:
                        lost = True
                        self.lost_events += 1
                        log.warning("signal lost: no samples for %.1f s", SIGNAL_LOST_S)
                        proc.control("signal_lost", True)
                        self.latest = eng.latest
                        self._dispatch_events()
                        for fn in first_sinks + state_sinks:  # the feedback outlet, then the others
                            fn(self.latest)
                    continue
                last_data = chunk.arrival_ns
                if lost:
                    lost = False
                    log.warning("signal restored")
                    proc.control("signal_lost", False)
                t_c = time.perf_counter_ns()
                st = proc.step(chunk.data)
                done = time.perf_counter_ns()
                st.arrival_ns = chunk.arrival_ns
                st.compute_ns = done - t_c
                st.published_ns = done
                self.latest = st  # publication: one reference assignment, atomic under the GIL
                age = chunk.age_s if chunk.age_s == chunk.age_s else 0.0
                self._last_sample_s = chunk.arrival_ns / 1e9 - age
                st.sample_ns = chunk.arrival_ns - int(age * 1e9)
                self.published += 1
                for fn in first_sinks:  # the feedback outlet, at once
                    fn(st)
                # after publication: nothing below delays the feedback
                self.ring.write(chunk.data, chunk.timestamps)
                for fn in chunk_sinks:
                    fn(chunk)
                self.probe.add(chunk.arrival_ns, done, done - t_c, chunk.age_s, self.t0_ns)
                self.history.add(st)
                for fn in state_sinks:
                    fn(st)
                self._dispatch_events()
            if proc.refit_pending:  # the session ended while the worker refitted: switch now, journaled
                proc.control("apply_refit")
        except BaseException as err:  # noqa: BLE001 - reported to the caller, never swallowed
            self.error = err
            log.error("acquisition stopped: %s", err)
        finally:
            self._dispatch_events()
