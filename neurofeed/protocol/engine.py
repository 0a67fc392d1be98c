"""The session engine: blocks, baseline, threshold, reward with hold time, artifact gates.

The engine counts samples, never wall-clock time, so that a replay of the same samples in the
same chunks reproduces every decision bit for bit.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from ..events import Event
from ..state import FeedbackState
from ..dsp.kernels import power_update
from .schema import BlockSpec, Protocol

_FLOOR_UV2 = 1e-12  # power floor so log10 stays finite on a flat signal


@dataclass
class BlockRecord:
    """Statistics of one block as it ran, for sidecars and reports."""

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

    def summary(self, baseline_uv2, sfreq) -> dict:
        mean_p = self.power_sum / max(self.n_power, 1)
        si = (np.log10(np.maximum(mean_p, _FLOOR_UV2) / baseline_uv2).tolist()
              if baseline_uv2 is not None and self.n_power else None)
        return {"label": self.label, "kind": self.kind, "feedback": self.feedback, "direction": self.direction,
                "start_s": self.start_sample / sfreq, "end_s": self.end_sample / sfreq,
                "mean_power_uv2": mean_p.tolist(), "si_pooled": si,
                "mean_si_combined": self.si_sum / self.n_si if self.n_si else None,
                "reward_rate": self.rewarded_samples / self.feedback_samples if self.feedback_samples else None,
                "gated_s": self.gated_samples / sfreq}


def combine_si(si: np.ndarray, how: str, sides=(0, 1)) -> float:
    """Combine per-target SI: mean, left, right, asymmetry (right − left).

    ``sides`` = (index of the left-hemisphere target, index of the right one), decided by the
    targets' names (``SignalSpec.sides()``: odd number = left, even = right), not their order.
    """
    values = si.tolist()  # a plain-Python mean of 1–4 values is several times faster than ndarray.mean
    if how == "mean":
        return sum(values) / len(values)
    left, right = sides
    if how == "left":
        return values[left]
    if how == "right":
        return values[right]
    return values[right] - values[left]


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
    """

    def __init__(self, protocol: Protocol, sfreq: float, targets, seconds_scale: float = 1.0, external=None):
        self.p = protocol
        self._sides = protocol.signal.sides()  # (left, right) target indices, by channel name
        self.sfreq = float(sfreq)
        self.targets = tuple(targets)
        self.n_t = len(self.targets)
        self.scale = float(seconds_scale)
        self.external = protocol.markers.mode == "external" if external is None else external
        self.schedule: list[BlockSpec] = [] if self.external else protocol.schedule()
        self.bounds = np.cumsum([0] + [int(round(b.duration_s * self.scale * self.sfreq)) for b in self.schedule])
        self.max_samples = int(round(protocol.protocol.max_duration_min * 60 * self.scale * self.sfreq))
        thr = protocol.threshold
        self.hold = int(round(thr.hold_s * self.sfreq))
        self.refractory = int(round(thr.refractory_s * self.sfreq))
        self.n = 0
        self.seq = 0
        self.events: list[Event] = []
        self.blocks: list[BlockRecord] = []
        self.block: BlockSpec | None = None
        self.block_index = -1
        self.finished = False
        self.paused = False
        self.baseline_uv2: np.ndarray | None = None
        # one threshold per direction: a protocol whose blocks train both ways (depression:
        # down for negative faces, up for positive ones) needs each set from the baseline for its own side
        start = thr.value if thr.mode == "fixed" else float("nan")
        self.thresholds = {"up": start, "down": start}
        self.direction = protocol.protocol.direction
        self.threshold_history: list[tuple[float, float]] = []
        base_n = int(sum(b.duration_s for b in self.schedule if b.label == protocol.baseline.block)
                     * self.scale * self.sfreq) + 1 if not self.external else int(600 * self.sfreq)
        self._base_log = np.zeros((base_n, self.n_t))  # per-update log10 power during the baseline
        self._base_n = 0
        self._base_sum = np.zeros(self.n_t)
        self._base_count = 0
        self._cond_run = 0
        self._since_reward = 10 ** 12
        self.reward = False
        self.gated = False
        self._gate_reasons: tuple = ()
        self.gated_samples = 0
        self.rewarded_samples = 0
        self.feedback_samples = 0
        self.signal_lost = False
        self._si = np.full(self.n_t, np.nan)
        self._last = np.zeros(self.n_t)
        self._scratch_sum = np.ones(self.n_t)
        self.defer_baseline = False
        self.baseline_pending = False
        self._last_state = FeedbackState(targets=self.targets)
        if self.schedule:
            self._enter_block(0)

    # -- blocks -------------------------------------------------------------------------
    def emit(self, text: str, duration_s: float = 0.0) -> None:
        """Log an event at the current sample (recorded, annotated and sent to the event outlet)."""
        self.events.append(Event(self.n, self.n / self.sfreq, duration_s, text))

    def _enter_block(self, index: int) -> None:
        b = self.schedule[index]
        self.block_index = index
        self._open(b)

    def _open(self, b: BlockSpec) -> None:
        self.block = b
        direction = b.direction or self.p.protocol.direction
        self.blocks.append(BlockRecord(b.label, b.kind, b.feedback, direction, self.n, power_sum=np.zeros(self.n_t)))
        self._cond_run = 0
        self.emit(f"block_start/{b.label}/{b.kind}")

    def _close_block(self) -> None:
        if self.block is None:
            return
        rec = self.blocks[-1]
        rec.end_sample = self.n
        self._set_reward(False)
        self.emit(f"block_end/{rec.label}")
        was_baseline = rec.label == self.p.baseline.block
        self.block = None
        if was_baseline and self.baseline_uv2 is None and self._base_n:
            if self.defer_baseline:
                self.baseline_pending = True  # the owner refits the estimator, then calls finish_baseline
            else:
                self.finish_baseline()

    def start_block(self, label: str, kind: str | None = None, feedback: bool | None = None) -> None:
        """External mode: end the running block and start one with this label."""
        self._close_block()
        known = {b.label: b for b in self.p.blocks}
        tmpl = known.get(label)
        if tmpl is None:
            is_base = label == self.p.baseline.block
            tmpl = BlockSpec(label=label, kind=kind or ("exploration" if is_base else "integration"),
                             duration_s=float("inf"), feedback=(not is_base) if feedback is None else feedback)
        self.block_index += 1
        self._open(tmpl)

    def end_block(self) -> None:
        """External mode: end the running block (no block runs until the next start)."""
        self._close_block()

    def _advance_schedule(self) -> None:
        while not self.external and self.block_index < len(self.schedule) and self.n >= self.bounds[self.block_index + 1]:
            self._close_block()
            if self.block_index + 1 < len(self.schedule):
                self._enter_block(self.block_index + 1)
            else:
                self.block_index = len(self.schedule)
                self._finish("schedule complete")
                return
        if self.max_samples and self.n >= self.max_samples and not self.finished:
            self._close_block()
            self._finish("maximum session duration reached")

    def _finish(self, why: str) -> None:
        if not self.finished:
            self.finished = True
            self.emit(f"session_end/{why}")

    def stop(self, why: str = "stopped by operator") -> None:
        """End the session now (closes the running block)."""
        self._close_block()
        self._finish(why)

    # -- baseline and threshold -----------------------------------------------------------
    def finish_baseline(self, baseline_uv2=None, log_powers=None) -> None:
        """Fix the baseline from the collected updates (or from given values) and set the threshold.

        Parameters
        ----------
        baseline_uv2 : array, optional
            Baseline power per target (µV²); default the statistic of the baseline block.
        log_powers : array (n_updates, n_targets), optional
            log10 power per update during the baseline, for the percentile threshold.
        """
        if log_powers is None:
            log_powers = self._base_log[: self._base_n]
        if baseline_uv2 is None:
            if self.p.baseline.statistic == "median":
                baseline_uv2 = 10 ** np.median(log_powers, axis=0)
            else:
                baseline_uv2 = self._base_sum / max(self._base_count, 1)
        self.baseline_uv2 = np.maximum(np.asarray(baseline_uv2, dtype=float), _FLOOR_UV2)
        thr = self.p.threshold
        if thr.mode != "fixed" and len(log_powers):
            si = log_powers - np.log10(self.baseline_uv2)
            comb = np.array([combine_si(row, self.p.signal.combine, self._sides) for row in si])
            pct = thr.baseline_reward_pct if thr.mode == "percentile" else thr.target_reward_pct
            for direction, q in (("up", pct), ("down", 100.0 - pct)):
                value = float(np.percentile(comb, q))
                if thr.mode == "adaptive":
                    value = float(np.clip(value, thr.min_si, thr.max_si))
                self.thresholds[direction] = value
        self.baseline_pending = False
        self.threshold_history.append((self.n / self.sfreq, self.threshold))
        self.emit(f"baseline/{';'.join(f'{t}={p:.4g}uV2' for t, p in zip(self.targets, self.baseline_uv2))}"
                   f"/threshold_up={self.thresholds['up']:.4f}/threshold_down={self.thresholds['down']:.4f}")

    @property
    def threshold(self) -> float:
        """The SI threshold of the direction being trained now."""
        return self.thresholds[self.direction]

    # -- controls -------------------------------------------------------------------------
    def set_paused(self, paused: bool) -> None:
        """Pause or resume feedback (recording continues)."""
        if paused != self.paused:
            self.paused = paused
            self._set_reward(False)
            self.emit("pause" if paused else "resume")

    def marker(self, text: str = "marker") -> None:
        """Log an operator marker."""
        self.emit(f"marker/{text}")

    def _set_reward(self, on: bool) -> None:
        if on != self.reward:
            self.reward = on
            self.emit("reward_on" if on else "reward_off")
            if not on:
                self._since_reward = 0

    def set_signal_lost(self, lost: bool) -> FeedbackState:
        """Mark the signal lost (no samples for 0.5 s) or back; returns the state to publish."""
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
               emg_rms_uv=None) -> FeedbackState:
        """One update per chunk.

        Parameters
        ----------
        power : ndarray, shape (n_targets, n_samples)
            Mu power per sample (µV²) from the estimator.
        gated : bool
            The artifact gate (any inhibit firing) during this chunk.
        """
        n = power.shape[1]
        b = self.block
        rec = self.blocks[-1] if (self.blocks and b is not None) else None
        is_base = (b is not None and b.label == self.p.baseline.block and self.baseline_uv2 is None
                   and not self.baseline_pending)
        ready = self.baseline_uv2 is not None
        last, si = self._last, self._si
        power_update(power, rec.power_sum if rec is not None else self._scratch_sum, self._base_sum, is_base,
                     self.baseline_uv2 if ready else self._scratch_sum, ready, last, si, _FLOOR_UV2)
        if rec is not None:
            rec.n_power += n
        if is_base and self._base_n < len(self._base_log):
            self._base_count += n
            self._base_log[self._base_n] = np.log10(np.maximum(last, _FLOOR_UV2))
            self._base_n += 1
        if gated != self.gated:
            self.gated = gated
            self.emit("gate_on" if gated else "gate_off")
        if ready:
            si_comb = combine_si(si, self.p.signal.combine, self._sides)
        else:
            si_comb = math.nan
        direction = (b.direction or self.p.protocol.direction) if b is not None else self.p.protocol.direction
        self.direction = direction
        feedback_on = b is not None and b.feedback and not self.paused and ready and not self.signal_lost
        thr = self.threshold
        cond = False
        if ready and not math.isnan(thr):
            cond = si_comb < thr if direction == "up" else si_comb > thr
        if feedback_on:
            if rec is not None:
                rec.feedback_samples += n
                rec.si_sum += si_comb
                rec.n_si += 1
            self.feedback_samples += n
            if gated:
                self.gated_samples += n
                if rec is not None:
                    rec.gated_samples += n
            self._cond_run = self._cond_run + n if cond else 0
            self._since_reward += n
            if self.reward:
                on = cond and not gated
            else:
                on = cond and not gated and self._cond_run >= self.hold and self._since_reward >= self.refractory
            self._set_reward(on)
            if on:
                self.rewarded_samples += n
                if rec is not None:
                    rec.rewarded_samples += n
            tmode = self.p.threshold
            if tmode.mode == "adaptive" and not gated:
                err = (1.0 if on else 0.0) - tmode.target_reward_pct / 100.0
                step = tmode.adapt_step * err
                self.thresholds[direction] = min(max(thr - step if direction == "up" else thr + step, tmode.min_si),
                                                 tmode.max_si)
                if self.seq % 25 == 0:
                    self.threshold_history.append((self.n / self.sfreq, self.threshold))
        else:
            self._set_reward(False)
            self._cond_run = 0
        self.n += n
        self.seq += 1
        self._advance_schedule()
        if ready and not math.isnan(thr):
            diff = (thr - si_comb) if direction == "up" else (si_comb - thr)
            fb = min(max(0.5 + diff / (2 * self.p.feedback.scale), 0.0), 1.0)
        else:
            fb = 0.5
        if b is not None and not self.external:
            left = (self.bounds[self.block_index + 1] - self.n) / self.sfreq if self.block_index < len(self.schedule) else 0.0
        else:
            left = math.nan
        total = self.bounds[-1] / self.sfreq if not self.external else math.nan
        st = FeedbackState(
            seq=self.seq, sample_index=self.n, t_s=self.n / self.sfreq, targets=self.targets,
            power_uv2=last.copy(), si=si.copy(), si_combined=si_comb, feedback=fb, threshold=self.threshold,
            direction=direction, reward=self.reward, gated=gated, gate_reasons=tuple(gate_reasons),
            block_label=b.label if b else "", block_kind=b.kind if b else "", block_index=self.block_index,
            n_blocks=len(self.schedule), block_left_s=max(left, 0.0) if left == left else left,
            session_left_s=max(total - self.n / self.sfreq, 0.0) if total == total else total,
            feedback_on=feedback_on, cue=b.cue if b else "", stimuli=b.stimuli if b else "",
            paused=self.paused, baseline_ready=ready,
            reward_rate=(rec.rewarded_samples / rec.feedback_samples) if (rec is not None and rec.feedback_samples) else math.nan,
            signal_lost=self.signal_lost, finished=self.finished,
            quality_flags=quality_flags.copy() if quality_flags is not None else np.zeros(0, dtype=np.int64),
            emg_rms_uv=emg_rms_uv.copy() if emg_rms_uv is not None else np.zeros(0),
            low_stimulation=self.p.feedback.style == "low-stimulation")
        self._last_state = st
        return st

    def drain_events(self) -> list[Event]:
        """Events since the last call (the caller records and forwards them)."""
        ev, self.events = self.events, []
        return ev

    def summary(self) -> dict:
        """Session statistics for the sidecar and reports."""
        return {
            "baseline_uv2": None if self.baseline_uv2 is None else dict(zip(self.targets, self.baseline_uv2.tolist())),
            "threshold_final": dict(self.thresholds),
            "threshold_history": self.threshold_history,
            "reward_rate": self.rewarded_samples / self.feedback_samples if self.feedback_samples else None,
            "gated_s": self.gated_samples / self.sfreq,
            "feedback_s": self.feedback_samples / self.sfreq,
            "samples": self.n,
            "blocks": [r.summary(self.baseline_uv2, self.sfreq) for r in self.blocks],
        }
