"""FeedbackState: everything a view or an outlet needs about the latest update."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(slots=True)
class FeedbackState:
    """The latest update, published once per chunk by the pipeline.

    ``feedback`` (the bar) follows ``si_bar``; ``reward`` follows ``si_combined`` (the raw
    estimate) through the protocol's reward rule.
    SI values are log10(power / baseline power): negative means suppression. Before the
    baseline is taken they are NaN and ``baseline_ready`` is False (views show a dash).
    """

    seq: int = 0
    sample_index: int = 0  # samples processed so far
    t_s: float = 0.0  # session time of the newest sample (s)
    targets: tuple = ()
    power_uv2: np.ndarray = field(default_factory=lambda: np.zeros(0))  # mu power per target (µV²)
    si: np.ndarray = field(default_factory=lambda: np.zeros(0))  # SI per target
    si_combined: float = float("nan")  # combined SI, unsmoothed (the feedback outlet's first channel)
    si_bar: float = float("nan")  # the SI the bar shows: combined SI after [feedback] smoothing_s (0: the SI itself)
    feedback: float = 0.5  # 0..1 bar height; threshold sits at 0.5
    # ``feedback`` and ``reward`` are what the participant is shown; in a
    # yoked-sham session (neurofeed.live.sham) that is another session's recorded feedback, and the
    # participant's own live values are these two (equal to feedback/reward otherwise) ---
    live_feedback: float = 0.5
    live_reward: bool = False
    threshold: float = float("nan")  # SI threshold
    direction: str = "up"
    reward: bool = False
    gated: bool = False
    gate_reasons: tuple = ()
    block_label: str = ""
    block_kind: str = ""
    block_index: int = -1
    n_blocks: int = 0
    block_left_s: float = float("nan")
    session_left_s: float = float("nan")
    feedback_on: bool = False
    cue: str = ""
    stimuli: str = ""
    paused: bool = False
    schedule_paused: bool = False  # the block clock is frozen (and feedback with it)
    threshold_locked: bool = False  # the operator froze the threshold (adaptive stops moving)
    stimulus: str = ""  # the current stimulus id: the external marker that started the block ("" otherwise)
    baseline_ready: bool = False
    reward_rate: float = float("nan")  # realised share of rewarded feedback time in this block (0..1)
    signal_lost: bool = False
    finished: bool = False
    quality_flags: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    emg_rms_uv: np.ndarray = field(default_factory=lambda: np.zeros(0))
    arrival_ns: int = 0
    # perf_counter_ns of the newest sample: the arrival less the source's age (its timestamp on
    # the host clock); the arrival where the source cannot tell. Outlets stamp with it.
    sample_ns: int = 0
    published_ns: int = 0
    compute_ns: int = 0
    low_stimulation: bool = False
