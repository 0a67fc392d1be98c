"""The per-chunk processing of one session: the DSP chain and the engine, no threads, no I/O.

:class:`Processor` is what live sessions and replays share (which is what makes replay exact);
:func:`processor_for` builds one from what a source says and a protocol, the one way every
path (live session, file replay, journal replay, ``replay --display``, the dyad) builds it.
"""

from __future__ import annotations

import copy
import logging

import numpy as np

from ..core.errors import NeurofeedError
from ..core.state import FeedbackState
from ..dsp.accuracy import choose_delay, delay_curves, format_curve, format_effective
from ..dsp.chain import MuChain, concat_chunks
from ..dsp.individual_band import individual_band
from ..dsp.quality import FLAT, NONFINITE, RAILED, QualityConfig, flag_names
from ..dsp.spatial import explain_reference
from ..hardware.boards import BoardConfig, check_line_freq
from ..hardware.montages import require_fit
from ..protocol.engine import INPUTS, Engine
from ..protocol.schema import Protocol, check_band
from .refit import RefitJob, baseline_powers

log = logging.getLogger(__name__)

MAX_UPDATE_S = 0.1  # the longest stretch of samples one engine update covers (s)
MAX_DESIGN_DELAY_S = 0.25  # set_delay: the longest designed delay a clinician may pick (s)
MIN_DESIGN_DELAY_S = -0.05  # set_delay: the most forecasting design (s; the curve scores down to -40 ms)
CHOOSE_START_DELAY_S = 0.05  # delay_s = "choose": the design used until the baseline's curve picks one
# a baseline with less clean signal than [baseline] min_clean_s is measured again, at most this
# many times in all; then the session ends with the reason (Processor.baseline_refused)
MAX_BASELINE_ATTEMPTS = 3


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
                             delay_s, None, self.line_hz, qcfg, bipolar_pairs=s.bipolar, memory_s=s.memory_s)
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
        # the sham yoke: what the participant is shown instead of the live feedback (state.feedback,
        # state.reward; the live values stay in live_feedback/live_reward); None = the live feedback.
        # An object with shown(state, block_index, samples_in_block, sfreq) -> (feedback, reward)
        # (neurofeed.live.sham)
        self.sham_yoke = None
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
        self.fit_pending_baseline()  # this update still belongs to the baseline; SI starts with the next
        if self.sham_yoke is not None:  # yoked sham: the state is not yet published, so set it here
            # the block these samples belong to is the one running when the chunk began (feedback_on's too)
            st.feedback, st.reward = self.sham_yoke.shown(st, block, st.sample_index - start, self.sfreq)
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
        if name == "apply_refit":  # the journal's name of the install step (recorded sessions replay)
            self.install_refit()
            return
        if name in ("mark_bad_channel", "set_delay", "carry", "stop", "rebaseline"):
            self.install_refit()  # these act on the refitted chain (or end the session): switch to it first
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
        self.fit_pending_baseline()

    def _refusable(self, name: str, args, apply) -> None:
        """Run ``apply()``; a :class:`NeurofeedError` is logged and journaled as
        ``control_refused/<name>/<why>`` instead of raised (the session goes on)."""
        try:
            apply()
        except NeurofeedError as err:
            log.error("control %s%r refused: %s", name, args, err)
            self.engine.emit(f"control_refused/{name}/{err}")

    def fit_pending_baseline(self) -> None:
        """If an input (a block marker, a skip, a stop) has just ended the baseline between two
        chunks, fit the estimator and the baseline now, so the next chunk already goes through
        the refitted estimator with an unbroken history and gets its SI (the internal schedule
        ends the baseline inside ``step``, at its last sample)."""
        if self.engine.baseline_pending and self._job is None:
            self._fit_baseline()

    @property
    def refit_pending(self) -> bool:
        """True while a refit computed in the worker has not been switched to yet."""
        return self._job is not None

    def refit_ready(self) -> bool:
        """True when a refit running in the worker is done and waits to be switched to (the
        Pipeline then installs it with ``control("apply_refit")`` between two chunks)."""
        return self._job is not None and self._job.done.is_set()

    def install_refit(self) -> None:
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
        job.install(job.result, since)

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
    def fit_estimator(self, x: np.ndarray) -> None:
        """Centre the band on the baseline's mu peak (individual band) and/or fit the weighted
        cFIR to the baseline ``x`` (targets × samples, referenced), and install it at once (the
        offline replay, which has the whole baseline before it streams); the estimator restarts."""
        plan = self._fit_plan(self.chain, x)
        self._install_plan(plan)
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
                                        weighted=chain.estimator_name == "wcfir", memory_s=chain.memory_limit_s)
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

    def _install_plan(self, plan: dict) -> None:
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

    def _fit_baseline(self) -> None:
        """At the end of the baseline: calibrate the artifact handling, centre the band on the
        mu peak (individual band) and/or fit the weighted cFIR to the baseline, and hand the new
        estimator's output over the same samples, in the same chunks, to the engine's baseline
        model. All of it is computed on a copy of the chain (:class:`RefitJob`): in a worker
        thread when ``refit_in_worker`` (the live loop runs on the current chain meanwhile and
        switches at a later chunk boundary, :meth:`install_refit`), else here and now."""
        chain = self.chain
        kept_raw, kept = chain.kept_raw, chain.kept
        chain.kept_raw, chain.kept = [], []  # handed to the job, not copied
        fitted = copy.deepcopy(chain)
        fitted.keep_conditioned = None

        def fit() -> dict:
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
            powers, settling = baseline_powers(fitted.estimator, x, sizes, mem)
            return {"plan": plan, "fitted": fitted, "sizes": sizes, "gated": gated, "n": x.shape[1],
                    "baseline": self.engine.fit_baseline(powers, settling, gated)}

        def install(res: dict, since) -> None:
            short = self._baseline_shortfall(res["baseline"]["fit"], res["n"], res["fitted"].estimator_memory_s())
            if short is not None:  # nothing of this baseline is taken (its calibration neither)
                self._refuse_baseline(short)
                return
            self._install_plan(res["plan"])
            self.chain.install_fit(res["fitted"], since)
            self._baseline_chunks = (res["sizes"], res["gated"])  # for a later change of design (set_delay)
            self.engine.install_baseline(fitted=res["baseline"])
            # the refitted estimator has seen the baseline and the samples since
            self._since_start = res["n"] + sum(c.shape[1] for c in since)

        self._run_job(RefitJob("baseline", fit, install))

    def _run_job(self, job: "RefitJob") -> None:
        """In the worker (``refit_in_worker``, while the session runs: switched to later by
        :meth:`install_refit`), or here and now."""
        if self.refit_in_worker and not self.engine.finished:  # (an ended session has no real-time path left)
            self._job = job
            self.chain.keep_conditioned = []
            job.start()
            return
        job.run()
        if job.error is not None:
            raise job.error
        job.install(job.result, [])

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
        # in the worker when refit_in_worker; the running chain switches to them in install
        probe = copy.copy(self.chain)
        probe.quality = copy.copy(self.chain.quality)  # redesign sets the gate holds on it
        sizes, gated = self._baseline_chunks or (None, None)

        def fit() -> dict:
            probe.redesign(d, baseline=x)  # all or nothing: raises, and nothing is changed
            out = {"probe": probe, "baseline": None}
            if fitted:
                fresh = copy.deepcopy(probe.estimator)
                fresh.reset()
                mem = int(round(probe.estimator_memory_s() * self.sfreq))
                out["baseline"] = self.engine.fit_baseline(*baseline_powers(fresh, x, sizes, mem), gated)
            return out

        def install(res: dict, since) -> None:
            continued = self.chain.install_design(res["probe"])  # takes the running history over now
            if not continued:  # cannot happen for the (c)FIR kinds today; if it did, hold its start-up out
                log.warning("set_delay: the new design starts without the running history")
                self._since_start = 0
            self.delay_history.append((self.engine.n, d))
            if res["baseline"] is not None:
                self.engine.install_baseline(fitted=res["baseline"], keep_thresholds=True)

        self._run_job(RefitJob("set_delay", fit, install, refusable="set_delay"))

    def summary(self) -> dict:
        """The engine's summary plus what the processor decided (band, bad channels). A refit
        still running when the session ended is waited for and switched to first (its baseline
        belongs in the summary; while the session runs the acquisition thread switches)."""
        if self.engine.finished:
            self.install_refit()
        self.engine.upstream_delay_s = self._chain_delay_s()  # the design in use now (set_delay, "choose")
        out = self.engine.summary()
        out["delay_s_history"] = [[int(n), float(d)] for n, d in self.delay_history]
        out["individual_band_hz"] = None if self.individual_band_hz is None else list(self.individual_band_hz)
        out["bad_channels"] = sorted(self.bad_channels)
        return out


def processor_for(source, protocol: Protocol, *, seconds_scale: float = 1.0, external: bool | None = None,
                  line_hz: float | None = None, range_uv: float | None = None) -> Processor:
    """The :class:`Processor` for ``source`` running ``protocol``: the one way every path builds
    it (a live session, a file's replay and its ``--display``, a journal's replay, each person of
    a dyad), so that the same source and protocol give the same processing everywhere.

    Parameters
    ----------
    source : object
        What the signal comes from, as it describes itself: ``sfreq`` (Hz), ``ch_names`` (10-10
        names of the rows handed over), ``range_uv`` (amplifier range, µV) and ``line_hz`` (mains
        frequency, Hz). A source opened on a board config (``source.config``, its montage
        unchanged) is checked to fit the protocol.
    protocol : Protocol
    seconds_scale : float
        Compresses the protocol's block durations (tests, demos); a journal's own.
    external : bool, optional
        Blocks driven by markers/annotations (default: the protocol's marker mode).
    line_hz : float, optional
        Mains frequency (Hz, 50 or 60) over the source's own: ``--line-freq``, a journal's header.
    range_uv : float, optional
        Amplifier range (µV) over the source's own: a journal's header.

    Raises
    ------
    NeurofeedError
        A mains frequency other than 50 or 60 Hz, a montage the protocol cannot run on, a band
        the sampling rate cannot hold (one line each).
    """
    line = check_line_freq(line_hz if line_hz is not None else source.line_hz, "line frequency")
    cfg = getattr(source, "config", None)
    if isinstance(cfg, BoardConfig) and list(source.ch_names) == cfg.montage():
        require_fit(protocol, cfg)  # a mismatch says which montage or board would work
    rng = float(range_uv if range_uv is not None else source.range_uv)
    return Processor(protocol, source.sfreq, source.ch_names, rng, seconds_scale, external=external, line_hz=line)
