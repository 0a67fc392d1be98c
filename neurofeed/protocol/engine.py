"""The session engine: blocks, baseline, threshold, reward with hold time, artifact gates.

The engine counts samples, never wall-clock time, so that a replay of the same samples in the
same chunks reproduces every decision bit for bit.

Every input to the engine — pauses, operator markers and notes, threshold lock and nudges, block
skips and extensions, external block markers, signal lost/restored, an operator stop, a
participant carry-over, a channel marked bad — is logged as an event at the sample where it
was applied (always a chunk boundary), in a text :func:`parse_input` reads back. Journal replay
re-feeds those events at the same boundaries, so any session replays bit-exact.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

import numpy as np

from ..core.events import Event
from ..core.state import FeedbackState
from ..dsp.filters import one_pole_alpha
from ..dsp.kernels import power_update
from .baseline import FLOOR_UV2, BaselineFit, BaselineModel, combine_si
from .reward import RewardRule
from .schema import BlockSpec, Protocol

__all__ = ["Engine", "BlockRecord", "combine_si", "parse_input", "CONTROLS", "INPUTS", "ADAPT_WINDOW_S"]

_FLOOR_UV2 = FLOOR_UV2

# The adaptive threshold steers the realised reward rate, estimated over this window (s): five
# seconds average over several reward episodes. With the default speed (0.2 SI/s per unit of rate
# error) and an SI spread of ~0.3 log units, the loop settles in ~10–20 s; on EEGMMIDB S001
# R03–R06 (4-s feedback blocks) the realised rate lands within 10 points of the target
# (benchmarks/reward_rate.py).
ADAPT_WINDOW_S = 5.0
HISTORY_EVERY_S = 1.0  # threshold history: one point a second (and at every operator change)

# Operator controls (docs/ARCHITECTURE.md, "Contracts"): name -> number of arguments (min, max). Pipeline.control()
# accepts these; the pipeline's own inputs (block markers, signal lost, stop, carry) are added in INPUTS.
CONTROLS = {"pause": (1, 1), "pause_schedule": (1, 1), "marker": (1, 1), "note": (1, 1),
            "lock_threshold": (1, 1), "nudge_threshold": (1, 1), "skip_block": (0, 0),
            "extend_block": (1, 1), "mark_bad_channel": (1, 2), "stimulus": (1, 1),
            "set_delay": (1, 1), "rebaseline": (0, 0)}
INPUTS = dict(CONTROLS, block_marker=(2, 2), signal_lost=(1, 1), stop=(1, 1), carry=(1, 1), apply_refit=(0, 0))


def parse_input(text: str):
    """``(name, args)`` of an input event's text (as the engine logs it), or None for an event
    that is an output (block starts of the internal schedule, reward, gates, baseline, ...)."""
    simple = {"pause": ("pause", (True,)), "resume": ("pause", (False,)),
              "schedule_pause": ("pause_schedule", (True,)), "schedule_resume": ("pause_schedule", (False,)),
              "threshold_lock": ("lock_threshold", (True,)), "threshold_unlock": ("lock_threshold", (False,)),
              "skip_block": ("skip_block", ()), "rebaseline": ("rebaseline", ()), "signal_lost": ("signal_lost", (True,)),
              "signal_restored": ("signal_lost", (False,))}
    if text in simple:
        return simple[text]
    head, _, rest = text.partition("/")
    if head in ("marker", "note", "stop", "stimulus"):
        return head, (rest,)
    if head == "threshold_nudge":
        return "nudge_threshold", (float(rest),)
    if head == "extend_block":
        return "extend_block", (float(rest),)
    if head == "set_delay":
        return "set_delay", (float(rest),)
    if head in ("bad_channel", "good_channel"):
        return "mark_bad_channel", (rest, head == "bad_channel")
    if head == "block_marker":
        onset, _, label = rest.partition("/")
        return "block_marker", (int(onset), label)
    if head == "carry":
        return "carry", (json.loads(rest),)
    if head == "refit_applied":  # the switch to a refit made in a worker (neurofeed.live.refit.RefitJob)
        return "apply_refit", ()
    return None


@dataclass
class BlockRecord:
    """Statistics of one block as it ran, for sidecars and reports.

    ``si_pooled`` (per target) is the block mean of the SI the participant was shown: the mean
    log10 mu power over every sample of the updates with the gate open and the estimator settled
    (``log_sum`` / ``n_log``; the shown SI samples it once per update), minus the baseline B = log10
    ``baseline_uv2`` (see :mod:`neurofeed.protocol.baseline`). ``mean_power_uv2`` is the
    arithmetic mean power over every update of the block (gated ones included), for reference;
    its log ratio to the baseline is not the SI (it sits ~0.25 higher, Jensen).
    """

    label: str
    kind: str
    feedback: bool
    direction: str
    start_sample: int
    end_sample: int = -1
    power_sum: np.ndarray = field(default_factory=lambda: np.zeros(0))
    n_power: int = 0
    rewarded_samples: int = 0
    feedback_samples: int = 0
    gated_samples: int = 0
    si_sum: float = 0.0
    n_si: int = 0
    log_sum: np.ndarray = field(default_factory=lambda: np.zeros(0))
    n_log: int = 0

    def summary(self, baseline_uv2, sfreq) -> dict:
        mean_p = self.power_sum / max(self.n_power, 1)
        si = ((self.log_sum / self.n_log - np.log10(baseline_uv2)).tolist()
              if baseline_uv2 is not None and self.n_log else None)
        return {"label": self.label, "kind": self.kind, "feedback": self.feedback, "direction": self.direction,
                "start_s": self.start_sample / sfreq, "end_s": self.end_sample / sfreq,
                "mean_power_uv2": mean_p.tolist(), "si_pooled": si,
                "mean_si_combined": self.si_sum / self.n_si if self.n_si else None,
                "reward_rate": self.rewarded_samples / self.feedback_samples if self.feedback_samples else None,
                "gated_s": self.gated_samples / sfreq}


class Engine:
    """Runs a protocol over a stream of mu power updates.

    Parameters
    ----------
    protocol : Protocol
    sfreq : float
    targets : list of str
        Names of the power rows (the protocol's targets).
    seconds_scale : float
        Multiply every block duration by this (e.g. 0.05 to run a protocol 20× compressed).
    external : bool
        Blocks start and end on :meth:`start_block` / :meth:`end_block` calls (LSL markers or
        file annotations) instead of the internal schedule.
    upstream_delay_s : float
        The DSP chain's declared delay (s); the summary adds the bar's own smoothing to it.

    Notes
    -----
    The bar follows ``si_bar``: the combined SI, smoothed by a one-pole filter with time constant
    ``[feedback] smoothing_s`` if the protocol asks for it (0 by default: the bar is the SI;
    applied per update with the update's sample count, so the response does not depend on the
    chunk size; its delay, ≈ ``smoothing_s``, is part of the declared feedback delay).

    The reward follows the raw combined SI (``si_combined``) through the protocol's reward rule
    (:class:`~neurofeed.protocol.reward.RewardRule`: hold, hysteresis, refractory, gates): its
    stability is the rule's, not a slower bar's. Percentile thresholds are calibrated by running
    the same rule over the baseline (:meth:`BaselineModel.thresholds`).
    """

    def __init__(self, protocol: Protocol, sfreq: float, targets, seconds_scale: float = 1.0, external=None,
                 upstream_delay_s: float = 0.0):
        self.protocol = protocol
        self._sides = protocol.signal.sides()  # (left, right) target indices, by channel name
        self.sfreq = float(sfreq)
        self.targets = tuple(targets)
        self.n_t = len(self.targets)
        self.scale = float(seconds_scale)
        self.external = protocol.markers.mode == "external" if external is None else external
        self.schedule: list[BlockSpec] = [] if self.external else protocol.schedule()
        self._durations = [int(round(b.duration_s * self.scale * self.sfreq)) for b in self.schedule]
        self.block_end = 0  # sample at which the running block of the internal schedule ends
        self.max_samples = int(round(protocol.protocol.max_duration_min * 60 * self.scale * self.sfreq))
        thr = protocol.threshold
        self.hold = int(round(thr.hold_s * self.sfreq))
        self.refractory = int(round(thr.refractory_s * self.sfreq))
        self.smoothing_s = protocol.feedback.smoothing_s
        self.upstream_delay_s = float(upstream_delay_s)
        self.n = 0
        self.seq = 0
        self.events: list[Event] = []
        self.blocks: list[BlockRecord] = []
        self.block: BlockSpec | None = None
        self.block_index = -1
        self.finished = False
        self.paused = False
        self.schedule_paused = False
        self.threshold_locked = False
        self._baseline_record = None  # the BlockRecord of the baseline, once refitted
        self.stimulus_now = ""
        self.baseline_uv2: np.ndarray | None = None
        # one threshold per direction: a protocol whose blocks train both ways (depression:
        # down for negative faces, up for positive ones) needs each set from the baseline for its own side
        start = thr.value if thr.mode == "fixed" else float("nan")
        self.thresholds = {"up": start, "down": start}
        self.direction = protocol.protocol.direction
        self.threshold_history: list[tuple[float, float]] = []
        base_s = sum(b.duration_s for b in self.schedule if b.label == protocol.baseline.block) * self.scale
        self.rule = RewardRule(self.hold, self.refractory, thr.hysteresis_si)
        # the baseline's SI as the reward rule reads it: raw (smoothing 0), whatever the bar shows
        self.baseline = BaselineModel(self.n_t, self.sfreq, protocol.baseline.statistic, protocol.signal.combine,
                                      0.0, capacity=int(base_s * self.sfreq) + 16 if base_s else 4096,
                                      sides=self._sides)
        self.baseline_fit: BaselineFit | None = None  # the session's own baseline, once measured
        self.carried_from: str | None = None
        self.carried: dict | None = None
        self.defer_baseline = False  # the owner refits the estimator, then calls install_baseline
        self.baseline_pending = False
        self._rate_est = thr.target_reward_pct / 100.0
        self._next_history = 0
        self.reward = False
        self.gated = False
        self.gated_samples = 0
        self.rewarded_samples = 0
        self.feedback_samples = 0
        self.signal_lost = False
        self._si = np.full(self.n_t, np.nan)
        self._last = np.zeros(self.n_t)
        self._scratch_sum = np.ones(self.n_t)
        self._log_scratch = np.empty((self.n_t, 64))
        self.si_bar = math.nan
        self._last_state = FeedbackState(targets=self.targets)
        if self.schedule:
            self._enter_block(0, 0)

    # -- events ---------------------------------------------------------------------------
    def emit(self, text: str, duration_s: float = 0.0, sample: int | None = None) -> None:
        """Log an event at the current sample (or at ``sample``): recorded, annotated and sent
        to the event outlet."""
        s = self.n if sample is None else int(sample)
        self.events.append(Event(s, s / self.sfreq, duration_s, text))

    def drain_events(self) -> list[Event]:
        """Events since the last call (the caller records and forwards them)."""
        ev, self.events = self.events, []
        return ev

    @property
    def latest(self) -> FeedbackState:
        """The last published state (a new object per update; never mutated afterwards)."""
        return self._last_state

    # -- blocks -------------------------------------------------------------------------
    def _enter_block(self, index: int, start: int) -> None:
        self.block_index = index
        self.block_end = start + self._durations[index]
        self._open(self.schedule[index])

    def _open(self, b: BlockSpec, onset: int | None = None) -> None:
        self.block = b
        direction = b.direction or self.protocol.protocol.direction
        start = self.n if onset is None else onset
        self.blocks.append(BlockRecord(b.label, b.kind, b.feedback, direction, start, power_sum=np.zeros(self.n_t),
                                       log_sum=np.zeros(self.n_t)))
        self.rule.reset()
        self.emit(f"block_start/{b.label}/{b.kind}", sample=start)

    def _close_block(self) -> None:
        if self.block is None:
            return
        rec = self.blocks[-1]
        rec.end_sample = self.n
        self._set_reward(False)
        self.emit(f"block_end/{rec.label}")
        was_baseline = rec.label == self.protocol.baseline.block
        self.block = None
        self.stimulus_now = ""
        if was_baseline and self.baseline_fit is None and self.baseline.n_updates and not self.baseline_pending:
            if self.defer_baseline:
                self.baseline_pending = True  # the owner refits the estimator, then calls install_baseline
            else:
                self.finish_baseline()

    def start_block(self, label: str, onset_sample: int | None = None) -> None:
        """External mode: end the running block and start one with this label (an input).

        ``onset_sample`` is the sample the marker was stamped at (from its LSL timestamp); the
        block's record and event start there, its statistics at this chunk boundary. Default:
        this boundary."""
        self.block_marker(self.n if onset_sample is None else onset_sample, label)

    def end_block(self, onset_sample: int | None = None) -> None:
        """External mode: end the running block (no block runs until the next start; an input)."""
        self.block_marker(self.n if onset_sample is None else onset_sample, "end")

    def block_marker(self, onset_sample: int, label: str) -> None:
        """An external block marker (``"end"`` ends the block), stamped at ``onset_sample``."""
        onset = int(min(max(onset_sample, self.blocks[-1].start_sample if self.blocks else 0), self.n))
        self.emit(f"block_marker/{onset}/{label}")
        self._close_block()
        if label == "end":
            return
        known = {b.label: b for b in self.protocol.blocks}
        tmpl = known.get(label)
        if tmpl is None:
            is_base = label == self.protocol.baseline.block
            tmpl = BlockSpec(label=label, kind="exploration" if is_base else "integration",
                             duration_s=float("inf"), feedback=not is_base)
        self.block_index += 1
        self.stimulus_now = label
        self._open(tmpl, onset)

    def _next_block(self, start: int) -> None:
        self._close_block()
        if self.block_index + 1 < len(self.schedule):
            self._enter_block(self.block_index + 1, start)
        else:
            self.block_index = len(self.schedule)
            self._finish("schedule complete")

    def _advance_schedule(self) -> None:
        while (not self.external and not self.finished and self.block_index < len(self.schedule)
               and self.n >= self.block_end):
            self._next_block(self.block_end)
        if self.max_samples and self.n >= self.max_samples and not self.finished:
            self._close_block()
            self._finish("maximum session duration reached")

    def samples_to_boundary(self) -> int | None:
        """Samples until the running block of the internal schedule ends (or the session reaches
        its maximum duration), or None when no boundary is scheduled (external markers, a paused
        schedule, the session over)."""
        if self.finished:
            return None
        left = []
        if not self.external and not self.schedule_paused and self.block_index < len(self.schedule):
            left.append(self.block_end - self.n)
        if self.max_samples:
            left.append(self.max_samples - self.n)
        left = [k for k in left if k > 0]
        return min(left) if left else None

    def _finish(self, why: str) -> None:
        if not self.finished:
            self.finished = True
            self.emit(f"session_end/{why}")

    def stop(self, why: str = "stopped by operator") -> None:
        """End the session now (closes the running block; an input)."""
        if self.finished:
            return
        self.emit(f"stop/{why}")
        self._close_block()
        self._finish(why)

    # -- baseline and threshold -----------------------------------------------------------
    @property
    def collecting_baseline(self) -> bool:
        """True while the baseline block runs and its updates go into :attr:`baseline`."""
        b = self.block
        return (b is not None and b.label == self.protocol.baseline.block and self.baseline_fit is None
                and not self.baseline_pending)

    def finish_baseline(self, fit: BaselineFit | None = None, keep_thresholds: bool = False) -> None:
        """Fix the baseline from the collected updates (or from ``fit``) and set the thresholds
        (``keep_thresholds``: keep the running ones, e.g. adapted or nudged, when the baseline is
        only re-read by a new estimator design).

        With a carried-over baseline (:meth:`carry`) the session's own baseline is measured and
        recorded, but the carried baseline and thresholds stay in force.
        """
        fit = fit or self.baseline.fit(self.protocol.threshold)
        self.baseline_fit = fit
        self.baseline_pending = False
        text = ';'.join(f'{t}={p:.4g}uV2' for t, p in zip(self.targets, fit.baseline_uv2))
        excl = f"/gated={fit.excluded_s:.2f}s/settling={fit.settling_s:.2f}s"
        if self.carried is not None:
            self.emit(f"baseline_measured/{text}{excl}/kept_carried_baseline")
            return
        self.baseline_uv2 = np.maximum(np.asarray(fit.baseline_uv2, dtype=float), _FLOOR_UV2)
        if self.protocol.threshold.mode != "fixed" and not keep_thresholds:
            self.thresholds.update(fit.thresholds)
        self._history(force=True)
        self.emit(f"baseline/{text}/threshold_up={self.thresholds['up']:.4f}"
                  f"/threshold_down={self.thresholds['down']:.4f}{excl}")

    def baseline_again(self, why: str, drop_carry: bool = False) -> None:
        """Measure the baseline again from this sample (journaled as ``baseline_again/<why>``).

        Not an input itself: it follows from one (a channel marked bad during the baseline, the
        ``rebaseline`` control) or from a baseline refused for too little clean signal, and a
        replay derives it alike. What was collected is forgotten; the baseline in force (if any)
        stays until the new one is measured.

        Internal schedule: the running block is cut here and the protocol's baseline block runs
        now, for its full length; the cut block's remainder follows (a cut baseline block has no
        remainder: the new one replaces it), then the rest of the schedule. External markers: a
        baseline block running now collects again from here, else the next block labelled as the
        baseline does. ``drop_carry``: a carried-over baseline (:meth:`carry`) gives way to the
        one measured now.
        """
        self.emit(f"baseline_again/{why}")
        if drop_carry:
            self.carried = self.carried_from = None
        self.baseline.clear()
        self.baseline_fit = None
        self.baseline_pending = False
        self._baseline_record = None
        if self.external or self.finished:
            return
        label = self.protocol.baseline.block
        index = next((i for i, b in enumerate(self.schedule) if b.label == label), None)
        if index is None:
            return
        insert = [(self.schedule[index], self._durations[index])]
        b = self.block
        if b is not None and b.label != label and self.block_end > self.n:
            insert.append((b, self.block_end - self.n))
        for k, (spec, samples) in enumerate(insert, start=self.block_index + 1):
            self.schedule.insert(k, spec)
            self._durations.insert(k, samples)
        self._next_block(self.n)

    def end_without_baseline(self, why: str) -> None:
        """End the session now because no usable baseline could be measured (``session_end/<why>``)."""
        self._close_block()
        self._finish(why)

    def install_baseline(self, powers=None, settling=None, gated=None, keep_thresholds: bool = False,
                         fitted: dict | None = None) -> None:
        """The estimator was refitted (at the end of the baseline, or redesigned later):
        ``powers`` (one n_targets × n array per baseline update, same chunks) and ``settling``
        (per update, the refitted estimator's start-up) replace the baseline's, and ``gated``
        (per update, the calibrated gates' verdict) the live gate flags where given; the baseline
        block's statistics are recomputed from them, and the baseline is finished
        (``keep_thresholds``: see :meth:`finish_baseline`). ``fitted``: the same work done
        beforehand by :meth:`fit_baseline` (off the real-time path), instead of ``powers``."""
        if fitted is None:
            fitted = self.fit_baseline(powers, settling, gated)
        self.baseline = fitted["model"]
        if self._baseline_record is None:  # the first refit ends the baseline: its block is the newest so labelled
            self._baseline_record = [r for r in self.blocks if r.label == self.protocol.baseline.block][-1]
        rec = self._baseline_record  # a later block may reuse the label (a rest called "baseline")
        rec.power_sum, rec.n_power = fitted["power_sum"], fitted["n_power"]
        rec.log_sum, rec.n_log = fitted["log_sum"], fitted["n_log"]  # the block's SI as the refitted estimator reads it
        self.finish_baseline(fitted["fit"], keep_thresholds=keep_thresholds)

    def fit_baseline(self, powers, settling=None, gated=None) -> dict:
        """What :meth:`install_baseline` computes from the refitted powers, on a copy of the
        baseline model, changing nothing in the engine (safe in a worker thread while the engine
        runs on: the baseline model is no longer written once the baseline has ended)."""
        import copy

        powers = list(powers)
        model = copy.deepcopy(self.baseline)
        model.replace_power(powers, settling, gated)
        mean_log, n_clean = model.clean_log_mean()
        return {"log_sum": mean_log * n_clean, "n_log": n_clean,
                "model": model, "fit": model.fit(self.protocol.threshold),
                "power_sum": np.sum([p.sum(axis=1) for p in powers], axis=0),
                "n_power": int(sum(p.shape[1] for p in powers))}

    def carry(self, previous: dict) -> None:
        """Start from a previous session (an input): ``previous`` holds ``baseline_uv2``
        ({target: µV²}), ``thresholds`` ({"up", "down"}) and ``source`` (the session folder),
        optionally ``band_hz``. The session's own baseline block is still measured and recorded."""
        self.emit("carry/" + json.dumps(previous, sort_keys=True))
        self.carried = dict(previous)
        self.carried_from = str(previous.get("source", ""))
        base = previous["baseline_uv2"]
        self.baseline_uv2 = np.maximum(np.array([float(base[t]) for t in self.targets]), _FLOOR_UV2)
        if self.protocol.threshold.mode != "fixed":
            self.thresholds.update({k: float(v) for k, v in previous["thresholds"].items() if k in ("up", "down")})
        self._history(force=True)

    @property
    def threshold(self) -> float:
        """The SI threshold of the direction being trained now."""
        return self.thresholds[self.direction]

    def _history(self, force: bool = False) -> None:
        if force or self.n >= self._next_history:
            self.threshold_history.append((self.n / self.sfreq, self.threshold))
            self._next_history = self.n + int(HISTORY_EVERY_S * self.sfreq)

    # -- controls (each an input, logged at the sample where it applied) -------------------
    def set_paused(self, paused: bool) -> None:
        """Pause or resume feedback (the bar); recording and the schedule go on."""
        self._switch("paused", paused, "pause", "resume")

    pause = set_paused

    def pause_schedule(self, paused: bool) -> None:
        """Freeze (or release) the block clock: block time does not advance, feedback is off."""
        self._switch("schedule_paused", paused, "schedule_pause", "schedule_resume")

    def _switch(self, attr: str, on: bool, on_event: str, off_event: str) -> None:
        """Set the flag ``attr``; on a change the reward goes off and the change is an event."""
        on = bool(on)
        if on != getattr(self, attr):
            setattr(self, attr, on)
            self._set_reward(False)
            self.emit(on_event if on else off_event)

    def marker(self, text: str = "marker") -> None:
        """An operator marker."""
        self.emit(f"marker/{text}")

    def note(self, text: str) -> None:
        """A clinician note."""
        self.emit(f"note/{text}")

    def stimulus(self, stimulus_id: str) -> None:
        """A stimulus appeared in the participant view (its onset, e.g. ``point-light-hands/002/reach-high``);
        it is the state's ``stimulus`` until the block ends."""
        self.stimulus_now = str(stimulus_id)
        self.emit(f"stimulus/{stimulus_id}")

    def lock_threshold(self, locked: bool) -> None:
        """Freeze (or release) the threshold: the adaptive threshold stops moving."""
        locked = bool(locked)
        if locked != self.threshold_locked:
            self.threshold_locked = locked
            self.emit("threshold_lock" if locked else "threshold_unlock")

    def nudge_threshold(self, delta_si: float) -> None:
        """Move the current direction's threshold by ``delta_si`` (log10 units; kept within
        ``[min_si, max_si]`` in adaptive mode; no effect before there is a threshold)."""
        delta_si = float(delta_si)
        self.emit(f"threshold_nudge/{delta_si!r}")
        d = self.direction
        value = self.thresholds[d] + delta_si
        if math.isnan(value):
            return
        t = self.protocol.threshold
        if t.mode == "adaptive":
            value = min(max(value, t.min_si), t.max_si)
        self.thresholds[d] = value
        self._history(force=True)

    def skip_block(self) -> None:
        """End the current block now and go on to the next (external mode: end it)."""
        self.emit("skip_block")
        if self.external:
            self._close_block()
        elif self.block is not None and not self.finished:
            self._next_block(self.n)

    def extend_block(self, seconds: float) -> None:
        """Lengthen the current block by ``seconds`` of session time (internal schedule; the
        session's maximum duration still applies)."""
        seconds = float(seconds)
        self.emit(f"extend_block/{seconds!r}")
        if not self.external and self.block is not None:
            self.block_end += max(int(round(seconds * self.sfreq)), -(self.block_end - self.n))

    def _set_reward(self, on: bool) -> None:
        if on != self.reward:
            self.reward = on
            self.emit("reward_on" if on else "reward_off")
            if not on:
                self.rule.ended()  # block end, pause, signal lost: the refractory starts now

    def set_signal_lost(self, lost: bool) -> FeedbackState:
        """Mark the signal lost (no samples for 0.5 s) or back (an input); returns the state to publish."""
        lost = bool(lost)
        if lost != self.signal_lost:
            self.signal_lost = lost
            self.emit("signal_lost" if lost else "signal_restored")
            if lost:
                self._set_reward(False)
        # a new object: the GUI may be drawing the one published before
        self._last_state = dataclasses.replace(self._last_state, signal_lost=lost, reward=self.reward)
        return self._last_state

    # -- the update -----------------------------------------------------------------------
    def update(self, power: np.ndarray, gated: bool, gate_reasons=(), quality_flags=None,
               emg_rms_uv=None, settling: bool = False) -> FeedbackState:
        """One update per chunk.

        Parameters
        ----------
        power : ndarray, shape (n_targets, n_samples)
            Mu power per sample (µV²) from the estimator.
        gated : bool
            The artifact gate (any inhibit firing) during this chunk.
        settling : bool
            The estimator has not yet filled its memory since it started: the update does not
            count in the baseline.

        Returns
        -------
        FeedbackState
            A new object (never mutated after it is returned).
        """
        n = power.shape[1]
        b = self.block
        rec = self.blocks[-1] if (self.blocks and b is not None) else None
        ready = self.baseline_uv2 is not None
        self._take_power(power, rec, gated, settling, ready)
        if self.schedule_paused and b is not None and not self.external:
            self.block_end += n  # block time does not advance
        if gated != self.gated:
            self.gated = gated
            self.emit("gate_on" if gated else "gate_off")
        si_comb = self._combine(gated, n) if ready else math.nan
        direction = (b.direction if b is not None else None) or self.protocol.protocol.direction
        self.direction = direction
        feedback_on = (b is not None and b.feedback and not self.paused and not self.schedule_paused and ready
                       and not self.signal_lost)
        if feedback_on:
            self._score(rec, si_comb, gated, n, direction, ready)
        else:
            self._set_reward(False)
            self.rule.reset()
        self.n += n
        self.seq += 1
        self._advance_schedule()
        rec = self.blocks[-1] if (self.blocks and b is not None) else None
        st = FeedbackState(
            seq=self.seq, sample_index=self.n, t_s=self.n / self.sfreq, targets=self.targets,
            power_uv2=self._last.copy(), si=self._si.copy(), si_combined=si_comb, si_bar=self.si_bar,
            threshold=self.threshold, live_reward=self.reward, direction=direction, reward=self.reward,
            gated=gated, gate_reasons=tuple(gate_reasons), block_label=b.label if b else "",
            block_kind=b.kind if b else "", block_index=self.block_index, n_blocks=len(self.schedule),
            feedback_on=feedback_on, cue=b.cue if b else "", stimuli=b.stimuli if b else "",
            paused=self.paused, schedule_paused=self.schedule_paused, threshold_locked=self.threshold_locked,
            stimulus=self.stimulus_now, baseline_ready=ready,
            reward_rate=(rec.rewarded_samples / rec.feedback_samples) if (rec is not None and rec.feedback_samples) else math.nan,
            signal_lost=self.signal_lost, finished=self.finished,
            quality_flags=quality_flags.copy() if quality_flags is not None else np.zeros(0, dtype=np.int64),
            emg_rms_uv=emg_rms_uv.copy() if emg_rms_uv is not None else np.zeros(0),
            low_stimulation=self.protocol.feedback.style == "low-stimulation", **self._bar(direction, ready),
            **self._time_left())
        self._last_state = st
        return st

    def _take_power(self, power: np.ndarray, rec, gated: bool, settling: bool, ready: bool) -> None:
        """The chunk's mu power (n_targets × n_samples, µV²) into the block's sums, the newest
        power and SI per target, and the baseline while it is collected."""
        n = power.shape[1]
        power_update(power, rec.power_sum if rec is not None else self._scratch_sum,
                     self.baseline_uv2 if ready else self._scratch_sum, ready, self._last, self._si, _FLOOR_UV2)
        if rec is not None:
            rec.n_power += n
            if not (gated or settling):  # the block's mean SI: artifacts and the estimator's start-up left out
                if self._log_scratch.shape[1] < n:
                    self._log_scratch = np.empty((self.n_t, n))
                logs = self._log_scratch[:, :n]
                np.maximum(power, _FLOOR_UV2, out=logs)
                np.log10(logs, out=logs)
                rec.log_sum += logs.sum(axis=1)  # every sample: the block mean does not depend on the chunking
                rec.n_log += n
        if self.collecting_baseline:
            self.baseline.add(power, gated, settling)

    def _combine(self, gated: bool, n: int) -> float:
        """The combined SI of the targets (log10 ratio) and the bar's smoothed SI after ``n`` samples."""
        si_comb = combine_si(self._si, self.protocol.signal.combine, self._sides)
        bar = self.si_bar
        if bar != bar:
            self.si_bar = si_comb
        elif not gated:  # an artifact's SI never enters the bar: it keeps its value while the gate is on
            self.si_bar = bar + one_pole_alpha(self.smoothing_s, self.sfreq, n) * (si_comb - bar)
        return si_comb

    def _score(self, rec, si_comb: float, gated: bool, n: int, direction: str, ready: bool) -> None:
        """While feedback is on: count the chunk's ``n`` samples (fed back, gated, rewarded),
        step the reward rule on the raw combined SI and adapt the threshold."""
        thr = self.threshold
        scored = ready and not math.isnan(thr)
        if rec is not None:
            rec.feedback_samples += n
            if not gated:  # the block's mean SI: weighted by samples, artifacts left out
                rec.si_sum += si_comb * n
                rec.n_si += n
        self.feedback_samples += n
        if gated:
            self.gated_samples += n
            if rec is not None:
                rec.gated_samples += n
        # the reward rule on the raw SI (never the bar's smoothing)
        on, cond = self.rule.step(si_comb if scored else math.nan, thr, direction, gated, n)
        self._set_reward(on)
        if on:
            self.rewarded_samples += n
            if rec is not None:
                rec.rewarded_samples += n
        tspec = self.protocol.threshold
        if tspec.mode == "adaptive":
            self._adapt(on, cond, gated, n, direction, thr, tspec)

    def _bar(self, direction: str, ready: bool) -> dict:
        """The bar's height (0..1, the threshold at 0.5) from the smoothed SI, as the shown and
        the live feedback of the state."""
        thr = self.threshold
        if ready and not math.isnan(thr):
            diff = (thr - self.si_bar) if direction == "up" else (self.si_bar - thr)
            fb = min(max(0.5 + diff / (2 * self.protocol.feedback.scale), 0.0), 1.0)
        else:
            fb = 0.5
        return {"feedback": fb, "live_feedback": fb}

    def _time_left(self) -> dict:
        """Seconds left in the block and the session (NaN when an external clock drives the blocks)."""
        if self.block is not None and not self.external:
            left = (self.block_end - self.n) / self.sfreq
            total = left + sum(self._durations[self.block_index + 1:]) / self.sfreq
        elif not self.external:
            left, total = 0.0, 0.0
        else:
            left = total = math.nan
        return {"block_left_s": max(left, 0.0) if left == left else left,
                "session_left_s": max(total, 0.0) if total == total else total}

    def _adapt(self, on, cond, gated, n, direction, thr, tspec) -> None:
        """Adaptive threshold: an integral controller on the realised reward rate (a running
        estimate over :data:`ADAPT_WINDOW_S`), moving at ``adapt_rate_per_s`` SI per second per
        unit of rate error — per second of signal, not per update, so the speed does not depend
        on the chunk size. It holds still while the threshold is locked, the gate is closed, the
        condition is met but reward waits for the hold time, or the refractory period runs."""
        self._rate_est += one_pole_alpha(ADAPT_WINDOW_S, self.sfreq, n) * ((1.0 if on else 0.0) - self._rate_est)
        waiting = not on and (cond or self.rule.since_reward < self.refractory)
        if self.threshold_locked or gated or waiting:
            return
        step = tspec.adapt_rate_per_s * (tspec.target_reward_pct / 100.0 - self._rate_est) * n / self.sfreq
        value = thr + step if direction == "up" else thr - step
        self.thresholds[direction] = min(max(value, tspec.min_si), tspec.max_si)
        self._history()

    def summary(self) -> dict:
        """Session statistics for the sidecar and reports."""
        fit = self.baseline_fit
        return {
            "baseline_uv2": None if self.baseline_uv2 is None else dict(zip(self.targets, self.baseline_uv2.tolist())),
            "baseline_statistic": self.protocol.baseline.statistic,  # of log10 power: baseline_uv2 is 10 ** B
            "baseline_excluded_s": None if fit is None else fit.excluded_s,
            "baseline_settling_s": None if fit is None else fit.settling_s,
            "baseline_clean_s": None if fit is None else fit.clean_s,
            # arithmetic mean of the clean baseline power: what a percent change (ERD) is relative to
            "baseline_mean_power_uv2": (None if fit is None or fit.mean_power_uv2 is None
                                        else dict(zip(self.targets, np.asarray(fit.mean_power_uv2).tolist()))),
            "baseline_measured_uv2": None if fit is None else dict(zip(self.targets, np.asarray(fit.baseline_uv2).tolist())),
            "carried_from": self.carried_from,
            "threshold_final": dict(self.thresholds),
            "threshold_history": self.threshold_history,
            "si_smoothing_s": self.smoothing_s,
            "bar_easing_s": self.protocol.feedback.easing_s,
            "feedback_delay_s": self.upstream_delay_s + self.protocol.feedback.bar_delay_s(),
            "reward_rate": self.rewarded_samples / self.feedback_samples if self.feedback_samples else None,
            "gated_s": self.gated_samples / self.sfreq,
            "feedback_s": self.feedback_samples / self.sfreq,
            "samples": self.n,
            "blocks": [r.summary(self.baseline_uv2, self.sfreq) for r in self.blocks],
        }
