"""Protocol files (TOML): typed objects and validation with one-line errors naming the key."""

from __future__ import annotations

import dataclasses
import difflib
import random
import re
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

from ..core.channels import hemisphere
from ..core.errors import ProtocolError
from ..core.library import library_files, search_dirs, shipped_dir

# The shipped protocol library: the repository's protocols/ folder, package data in the wheel
# (neurofeed.core.library); a clinic keeps its own protocols in a user folder laid over it file by file.
PROTOCOL_DIR = shipped_dir("protocols")
# what EDF/BDF headers and every file system carry: a participant code or a protocol name becomes
# part of a folder name and of the BDF header, so nothing else (no '/', '..', spaces, accents)
SAFE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def is_safe_name(text) -> bool:
    """True for ASCII letters, digits, '-' and '_' only (1-64 characters)."""
    return isinstance(text, str) and SAFE_NAME.fullmatch(text) is not None


KINDS = ("exploration", "integration", "consolidation", "action")
DIRECTIONS = ("up", "down")


@dataclass
class ProtocolInfo:
    """``[protocol]``: who it is for and the session-wide rules."""

    name: str
    condition: str = ""
    description: str = ""
    direction: str = "up"  # up: reward more suppression (SI below threshold); down: reward less
    max_duration_min: float = 60.0  # the session never runs longer than this
    rest_every_min: float = 15.0  # a consolidation (rest) block at least this often


@dataclass
class SignalSpec:
    """``[signal]``: channels, reference, band and estimator."""

    targets: list[str] = field(default_factory=lambda: ["C3", "C4"])
    # mean | left | right | asymmetry (right − left); left/right are decided by the targets' names
    # (odd number = left hemisphere, even = right, z = midline), not by their order
    combine: str = "mean"
    # preferred reference first, then fallbacks; the first the montage supports is used
    # (a single string is accepted): raw | average | laplacian | bipolar
    reference: list[str] = field(default_factory=lambda: ["laplacian", "average"])
    bipolar: dict = field(default_factory=dict)  # target -> partner channel, for reference = bipolar
    # board config -> the montage the protocol asks for on it (where its added electrodes sit, e.g.
    # { muse-2 = "aux-c3" }: the Muse AUX electrode placed at C3); used when --montage is not given
    montage: dict = field(default_factory=dict)
    band_hz: list[float] = field(default_factory=lambda: [8.0, 13.0])
    band_mode: str = "fixed"  # fixed | individual (peak in band_hz of the baseline spectrum ± width)
    individual_width_hz: float = 2.0
    estimator: str = "wcfir"  # wcfir (fitted to the baseline) | cfir | iir | window | learned (neurofeed.dsp.learned)
    delay_s: float = 0.05  # designed delay of the cFIR estimator (s), or "choose": see neurofeed.dsp.accuracy
    # how far back a (weighted) cFIR reaches (s): taps past it are penalised in the design, so the
    # bar forgets an artifact or a lost packet's fill within ~memory_s + 0.2 s (wcfir/cfir only;
    # unset: the plain 2-s design; neurofeed.dsp.estimators.design_cfir)
    memory_s: float | None = None
    # (no smoothing_s: every smoother of what the participant sees is a [feedback] setting, counted
    # in the bar's delay)
    # (no line_hz: the mains frequency belongs to the place, not the protocol; it comes from
    # --line-freq or the board config)

    def sides(self) -> tuple[int | None, int | None]:
        """Indices in ``targets`` of the left- and right-hemisphere target (None where there is
        none), decided by the 10-10 names (odd = left, even = right)."""
        left = [i for i, t in enumerate(self.targets) if hemisphere(t) == "left"]
        right = [i for i, t in enumerate(self.targets) if hemisphere(t) == "right"]
        return (left[0] if left else None), (right[0] if right else None)


@dataclass
class BaselineSpec:
    """``[baseline]``: which blocks form the baseline and the statistic of their power."""

    block: str = "baseline"
    statistic: str = "mean"  # mean | median (of log10 power; see neurofeed.protocol.baseline)
    # least clean baseline (s, gate open and estimator settled) a session or a causal replay
    # accepts: 20 s hold ~200 alpha cycles, enough for the mean log power to within ~0.05 log
    # units; `protocols check` refuses a live protocol whose baseline block cannot give it
    min_clean_s: float = 20.0
    # participant carry-over (#13)
    carry: str = "none"  # last: start from the participant's last session (baseline, band, thresholds) | none


@dataclass
class ThresholdSpec:
    """``[threshold]``: where reward starts, and hold/refractory timing."""

    mode: str = "percentile"  # percentile | fixed | adaptive
    baseline_reward_pct: float = 40.0  # percentile mode: share of baseline updates that would be rewarded
    value: float = 0.0  # fixed mode: the SI threshold
    target_reward_pct: float = 60.0  # adaptive mode: reward rate the threshold steers to
    min_si: float = -1.0  # adaptive bounds
    max_si: float = 1.0
    # adaptive speed in time units (#12), independent of the update rate
    adapt_rate_per_s: float = 0.2  # adaptive: SI change per second per unit of reward-rate error
    hold_s: float = 0.0  # the condition must hold this long before reward
    refractory_s: float = 0.0  # no new reward this soon after one ends
    # reward, once on, stays on until the SI is this far (log10 units) on the wrong side of the
    # threshold: the reward rule's own stability, so the bar need not be slowed for it
    hysteresis_si: float = 0.0


@dataclass
class InhibitSpec:
    """``[inhibits]``: artifact gates that switch reward off (0 disables a threshold)."""

    emg_uv: float = 10.0  # RMS in the EMG band on the sensorimotor channels
    blink_uv: float = 80.0  # peak of the 0.5-Hz high-passed frontal channels
    railed: bool = True
    flat: bool = True
    hold_s: float = 0.5  # gate stays on this long after the last trigger


@dataclass
class FeedbackSpec:
    """``[feedback]``: how SI maps to what the participant sees."""

    scale: float = 0.3  # SI distance from threshold that fills half the bar
    style: str = "standard"  # standard | low-stimulation
    tone: bool = False
    # The bar shows the SI as fast as it stays faithful; each smoother of what is shown is one of
    # these settings, in seconds, and counted in the bar's delay (`neurofeed protocols check`
    # prints it). The reward follows the raw SI with its own hold, hysteresis and refractory
    # ([threshold]), never these.
    # smoothing_s: time constant of the one-pole smoothing of the SI the bar shows (si_bar); adds
    # ~smoothing_s to the bar's delay. 0: the bar is the SI (on EEGMMIDB S001 0.05 s costs ~30 ms
    # for +0.1 r, 0.3 s ~110 ms: benchmarks/bar_smoothing.py)
    smoothing_s: float = 0.0
    # easing_s: the participant view's glide of the painted bar towards each new value (one-pole
    # in time, whatever the frame rate); adds ~easing_s. 0: the bar jumps to each new value
    easing_s: float = 0.0
    # reward_fade_s: time constant of the blend into and out of the reward colour (0: switches at
    # once). A colour, not the bar's height: it adds nothing to the bar's delay
    reward_fade_s: float = 0.0

    def bar_delay_s(self) -> float:
        """What the bar's own smoothing adds to the estimator's delay (s): ``smoothing_s + easing_s``
        (each a one-pole's low-frequency group delay)."""
        return float(self.smoothing_s) + float(self.easing_s)


@dataclass
class MarkerSpec:
    """``[markers]``: internal schedule, or blocks driven by an external LSL marker stream."""

    mode: str = "internal"  # internal | external
    stream: str = "neurofeed-stimuli"  # external: LSL stream name; markers are "<label>" to start, "end" to stop


@dataclass
class ShamSpec:
    """``[sham]``: real feedback, or yoked sham (the participant sees another session's recorded feedback).

    ``mode = "yoked"`` needs ``--yoke-from SESSION_DIR`` at the session; the live SI is still
    computed and recorded. A blinded session (``--blind-key FILE``) stores this protocol's text
    without its ``[sham]`` table, so keep the ``[protocol] name`` of a trial's real and sham
    protocols the same.
    """

    mode: str = "none"  # none | yoked


@dataclass
class DyadSpec:
    """``[dyad]``: two people, two headsets; the inter-brain mu coupling fed back (see neurofeed.dyad.monitor).

    The coupling index is the mean of max(AEC, 0) and PLV of the two people's mu (mean of their
    targets) over the last ``window_s`` seconds; it is shown in the shared participant view, each
    person's own SI beside it.
    """

    enabled: bool = False  # true: the protocol is for two people (--partner-board, --partner)
    window_s: float = 10.0  # sliding window of AEC and PLV (s)
    update_s: float = 0.1  # one coupling value (a dyad.tsv row) per this much signal (s)
    simulated_period_s: float = 20.0  # simulated partner mode: coupling on in alternate windows this long (s)
    # the shared picture's glide towards each new coupling value (time constant, s; one-pole in time,
    # whatever the frame rate): the coupling is itself a 10-s window, so a ~0.65-s glide hides its
    # 0.1-s steps without adding to what it summarises. 0: the picture jumps to each value
    coupling_easing_s: float = 0.65


@dataclass
class BlockSpec:
    """One ``[[blocks]]`` entry."""

    label: str
    kind: str
    duration_s: float
    feedback: bool = False
    cue: str = ""
    stimuli: str = ""  # folder of images shown in the participant view
    repeats: int = 1
    direction: str = ""  # overrides [protocol] direction for this block
    group: str = ""  # blocks sharing a group are shuffled together when [schedule] randomize = true


@dataclass
class ScheduleSpec:
    """``[schedule]``: randomised order within groups."""

    randomize: bool = False
    seed: int = 0


@dataclass
class Protocol:
    """A validated protocol; ``schedule()`` gives the expanded block list."""

    protocol: ProtocolInfo
    blocks: list[BlockSpec]
    signal: SignalSpec = field(default_factory=SignalSpec)
    baseline: BaselineSpec = field(default_factory=BaselineSpec)
    threshold: ThresholdSpec = field(default_factory=ThresholdSpec)
    inhibits: InhibitSpec = field(default_factory=InhibitSpec)
    feedback: FeedbackSpec = field(default_factory=FeedbackSpec)
    markers: MarkerSpec = field(default_factory=MarkerSpec)
    schedule_spec: ScheduleSpec = field(default_factory=ScheduleSpec)
    sham: ShamSpec = field(default_factory=ShamSpec)
    dyad: DyadSpec = field(default_factory=DyadSpec)
    path: Path | None = None
    text: str = ""

    @property
    def name(self) -> str:
        return self.protocol.name

    def schedule(self) -> list[BlockSpec]:
        """Blocks in run order: repeats expanded, groups shuffled if asked (seeded)."""
        expanded = [b for b in self.blocks for _ in range(b.repeats)]
        if not self.schedule_spec.randomize:
            return expanded
        rng = random.Random(self.schedule_spec.seed)
        out, i = [], 0
        while i < len(expanded):
            j = i
            if expanded[i].group:
                while j + 1 < len(expanded) and expanded[j + 1].group == expanded[i].group:
                    j += 1
            run = expanded[i:j + 1]
            if len(run) > 1:
                rng.shuffle(run)
            out.extend(run)
            i = j + 1
        return out

    def total_duration_s(self) -> float:
        """Scheduled length in seconds (internal marker mode)."""
        return float(sum(b.duration_s for b in self.schedule()))

    def check_montage(self, ch_names, where: str = "this montage") -> None:
        """Raise a ProtocolError naming target channels the montage lacks.

        The advice is to place an electrode at the missing site and pick a montage that has it;
        never to rename another electrode (a mastoid or forehead electrode is not motor cortex).
        """
        missing = [c for c in self.signal.targets if c not in set(ch_names)]
        if missing:
            raise ProtocolError(
                f"{self.path or self.name}: [signal] targets need {', '.join(missing)}, which {where} lacks "
                f"({', '.join(ch_names)}); place an electrode at {' and '.join(missing)} and choose a montage "
                f"that has {'it' if len(missing) == 1 else 'them'} (--montage; `neurofeed montages` lists them, "
                f"`neurofeed protocols check FILE --board all` shows which fit).")


_SECTIONS = {"protocol": ProtocolInfo, "signal": SignalSpec, "baseline": BaselineSpec, "threshold": ThresholdSpec,
             "inhibits": InhibitSpec, "feedback": FeedbackSpec, "markers": MarkerSpec, "schedule": ScheduleSpec,
             "sham": ShamSpec, "dyad": DyadSpec}
_CHOICES = {
    ("protocol", "direction"): DIRECTIONS, ("blocks", "direction"): DIRECTIONS + ("",),
    ("signal", "combine"): ("mean", "left", "right", "asymmetry"),
    ("signal", "reference"): ("raw", "average", "laplacian", "bipolar"),  # each item of the list
    ("signal", "band_mode"): ("fixed", "individual"), ("signal", "estimator"): ("wcfir", "cfir", "iir", "window", "learned"),
    ("baseline", "statistic"): ("mean", "median"), ("baseline", "carry"): ("none", "last"), ("threshold", "mode"): ("percentile", "fixed", "adaptive"),
    ("feedback", "style"): ("standard", "low-stimulation"), ("markers", "mode"): ("internal", "external"),
    ("blocks", "kind"): KINDS, ("sham", "mode"): ("none", "yoked"),
}
_POSITIVE = {("protocol", "max_duration_min"), ("protocol", "rest_every_min"), ("blocks", "duration_s"),
             ("blocks", "repeats"), ("feedback", "scale"), ("signal", "individual_width_hz"),
             ("dyad", "window_s"), ("dyad", "update_s"), ("dyad", "simulated_period_s")}
_NON_NEGATIVE = {("signal", "delay_s"), ("threshold", "hold_s"),
                 ("threshold", "refractory_s"), ("inhibits", "emg_uv"), ("inhibits", "blink_uv"),
                 ("inhibits", "hold_s"), ("threshold", "adapt_rate_per_s"),
                 ("feedback", "smoothing_s"), ("feedback", "easing_s"), ("feedback", "reward_fade_s"),
                 ("threshold", "hysteresis_si"), ("dyad", "coupling_easing_s"),
                 ("baseline", "min_clean_s")}
_PERCENT = {("threshold", "baseline_reward_pct"), ("threshold", "target_reward_pct")}


def _show(key: str) -> str:
    """A key as it can be printed on one line (quoted if it has odd characters)."""
    return key if key.isidentifier() else repr(key)


def _nearest(key, allowed):
    match = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else f" (allowed: {', '.join(allowed)})"


# keys that moved out of protocols, with where they live now
_MOVED = {("signal", "line_hz"): "the mains frequency belongs to the place, not the protocol: set line_hz in the "
                                 "board config or pass --line-freq 50|60",
          ("signal", "smoothing_s"): "smoothing of what the participant sees is a [feedback] setting counted in the "
                                     "bar's delay: use [feedback] smoothing_s (the SI the bar shows) or easing_s "
                                     "(the painted bar's glide)"}


def _check_value(src, section, key, value, typ):
    name = f"[{section}] {key}"
    if (section, key) == ("signal", "reference") and isinstance(value, str) and typ is not str:
        value = [value]  # one reference, no fallback

    # delay_s = "choose" (picked from the participant's accuracy/delay curve)
    if (section, key) == ("signal", "delay_s") and isinstance(value, str):
        if value != "choose":
            raise ProtocolError(f"{src}: {name} is {value!r}; expected a number of seconds (e.g. 0.02) or \"choose\".")
        return value
    if typ == (float | None):  # an optional number (TOML has no null: present means a number)
        typ = float
    origin = typing.get_origin(typ)
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ProtocolError(f"{src}: {name} must be a number, not {value!r}.")
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise ProtocolError(f"{src}: {name} must be a finite number, not {value!r}.")
    elif typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProtocolError(f"{src}: {name} must be a whole number, not {value!r}.")
    elif typ is bool:
        if not isinstance(value, bool):
            raise ProtocolError(f"{src}: {name} must be true or false, not {value!r}.")
    elif typ is str:
        if not isinstance(value, str):
            raise ProtocolError(f"{src}: {name} must be a string, not {value!r}.")
    elif origin is list:
        (item,) = typing.get_args(typ)
        if not isinstance(value, list):
            raise ProtocolError(f"{src}: {name} must be a list, not {value!r}.")
        value = [_check_value(src, section, key, v, item) for v in value]
    elif origin is dict or typ is dict:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ProtocolError(f"{src}: {name} must be a table of channel names, not {value!r}.")
    choices = _CHOICES.get((section, key))
    if choices is not None and isinstance(value, list):
        bad = [v for v in value if v not in choices]
        if bad or not value or len(set(value)) != len(value):
            what = f"has {bad[0]!r}" if bad else ("is empty" if not value else "repeats a reference")
            raise ProtocolError(f"{src}: {name} {what}; expected a reference or an ordered list of them from "
                                f"{', '.join(repr(c) for c in choices)}, e.g. [\"laplacian\", \"average\"].")
    elif choices is not None and value not in choices:
        raise ProtocolError(f"{src}: {name} is {value!r}; expected one of {', '.join(repr(c) for c in choices)}.")
    if (section, key) in _POSITIVE and value <= 0:
        raise ProtocolError(f"{src}: {name} must be > 0, not {value!r}.")
    if (section, key) in _NON_NEGATIVE and value < 0:
        raise ProtocolError(f"{src}: {name} must be >= 0, not {value!r}.")
    if (section, key) == ("blocks", "repeats") and value > 1000:
        raise ProtocolError(f"{src}: {name} must be at most 1000, not {value!r}.")
    if (section, key) in _PERCENT and not 0 < value < 100:
        raise ProtocolError(f"{src}: {name} must be between 0 and 100 (exclusive), not {value!r}.")
    return value


def _build(src, section, cls, table):
    if not isinstance(table, dict):
        raise ProtocolError(f"{src}: [{section}] must be a table, not {table!r}.")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in table.items():
        if (section, key) in _MOVED:
            raise ProtocolError(f"{src}: [{section}] {key} is no longer a protocol key; {_MOVED[section, key]}.")
        if key not in fields:
            raise ProtocolError(f"{src}: unknown key [{section}] {_show(key)}{_nearest(key, list(fields))}.")
        kwargs[key] = _check_value(src, section, key, value, hints[key])
    for name, f in fields.items():
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and name not in kwargs:
            raise ProtocolError(f"{src}: [{section}] is missing the required key {name!r}.")
    return cls(**kwargs)


def parse_protocol(text: str, src: str = "<protocol>") -> Protocol:
    """Validate protocol TOML text; raise :class:`ProtocolError` naming the key on any problem."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ProtocolError(f"{src}: not valid TOML: {err}.") from None
    allowed = list(_SECTIONS) + ["blocks"]
    for key in doc:
        if key not in allowed:
            raise ProtocolError(f"{src}: unknown key [{_show(key)}]{_nearest(key, allowed)}.")
    if "protocol" not in doc:
        raise ProtocolError(f"{src}: missing [protocol] table (name, condition, direction).")
    parts = {sec: _build(src, sec, cls, doc.get(sec, {})) for sec, cls in _SECTIONS.items()}
    blocks_raw = doc.get("blocks")
    if not isinstance(blocks_raw, list) or not blocks_raw:
        raise ProtocolError(f"{src}: [[blocks]] must list at least one block (label, kind, duration_s).")
    blocks = [_build(src, "blocks", BlockSpec, b) for b in blocks_raw]
    proto = Protocol(protocol=parts["protocol"], blocks=blocks, signal=parts["signal"], baseline=parts["baseline"],
                     threshold=parts["threshold"], inhibits=parts["inhibits"], feedback=parts["feedback"],
                     markers=parts["markers"], schedule_spec=parts["schedule"], sham=parts["sham"],
                     dyad=parts["dyad"], text=text)
    _check_semantics(proto, src)
    return proto


def check_protocol_name(name, src: str) -> None:
    """``[protocol] name`` names session folders and goes into the BDF: refused unless it is ASCII
    letters, digits, '-' and '_' (checked on loading a protocol file, not on replaying the protocol
    text an older session stored)."""
    if not is_safe_name(name):
        raise ProtocolError(f"{src}: [protocol] name = {name!r} is not valid: it names the session folder and the "
                            f"BDF, so use ASCII letters, digits, '-' and '_' only (no '/', '..', spaces or accents), "
                            f"e.g. \"mu-training\".")


#: [signal] memory_s accepted (s): at least ~2 cycles of 8 Hz, at most the wcFIR's 2-s taps
MEMORY_RANGE_S = (0.2, 2.0)


def _check_semantics(p: Protocol, src: str) -> None:
    s = p.signal
    if len(s.band_hz) != 2 or not 0 < s.band_hz[0] < s.band_hz[1]:
        raise ProtocolError(f"{src}: [signal] band_hz must be [low, high] with 0 < low < high, not {s.band_hz!r}.")
    if not s.targets:
        raise ProtocolError(f"{src}: [signal] targets must name at least one channel, e.g. [\"C3\", \"C4\"].")
    if len(set(s.targets)) != len(s.targets):
        raise ProtocolError(f"{src}: [signal] targets name a channel twice: {s.targets}.")
    _check_sides(s, src)
    if s.estimator == "learned" and (s.band_mode != "fixed" or [float(b) for b in s.band_hz] != [8.0, 13.0]):
        raise ProtocolError(f"{src}: [signal] estimator = \"learned\" is trained for band_hz = [8, 13] with band_mode = "
                            f"\"fixed\" only; use those, or estimator = \"wcfir\" for another band.")
    if s.memory_s is not None:
        if s.estimator not in ("wcfir", "cfir"):
            raise ProtocolError(f"{src}: [signal] memory_s limits a (weighted) cFIR's taps; estimator = "
                                f"{s.estimator!r} has none: remove memory_s or use estimator = \"wcfir\".")
        if not MEMORY_RANGE_S[0] <= s.memory_s <= MEMORY_RANGE_S[1]:
            raise ProtocolError(f"{src}: [signal] memory_s is {s.memory_s:g}; expected {MEMORY_RANGE_S[0]:g} to "
                                f"{MEMORY_RANGE_S[1]:g} s (a few 8-13 Hz cycles at least; unset for the plain 2-s design).")
    extra = [t for t in s.bipolar if t not in s.targets]
    if extra:
        raise ProtocolError(f"{src}: [signal] bipolar names {extra[0]!r}, which is not a target "
                            f"({', '.join(s.targets)}).")
    t = p.threshold
    if t.mode == "adaptive" and not t.min_si < t.max_si:
        raise ProtocolError(f"{src}: [threshold] min_si ({t.min_si}) must be below max_si ({t.max_si}).")
    labels = [b.label for b in p.blocks]
    needs_baseline = t.mode != "fixed"
    if needs_baseline and p.baseline.block not in labels:
        raise ProtocolError(f"{src}: [baseline] block = {p.baseline.block!r} is not a block label "
                            f"(labels: {', '.join(labels)}).")
    if p.markers.mode == "internal":
        sched = p.schedule()
        total_min = sum(b.duration_s for b in sched) / 60.0
        if total_min > p.protocol.max_duration_min:
            raise ProtocolError(f"{src}: [protocol] max_duration_min = {p.protocol.max_duration_min:g}, but the blocks "
                                f"last {total_min:.1f} min; shorten the blocks or raise the limit.")
        run = 0.0
        for b in sched:
            run = 0.0 if b.kind == "consolidation" else run + b.duration_s
            if run / 60.0 > p.protocol.rest_every_min + 1e-9:
                raise ProtocolError(f"{src}: [protocol] rest_every_min = {p.protocol.rest_every_min:g}, but block "
                                    f"{b.label!r} runs {run / 60:.1f} min without a consolidation (rest) block.")


# The estimator's start-up left out of the baseline (s; MuChain.estimator_memory_s for the
# protocol's defaults: the (weighted) cFIR's taps, the window's length, ~4 delays of the IIR)
SETTLING_S = {"wcfir": 2.0, "cfir": 1.0, "window": 1.0, "iir": 0.4}


def baseline_shortfall(p: Protocol) -> str | None:
    """Why a live protocol's baseline cannot give ``[baseline] min_clean_s`` of clean signal,
    or None: the baseline block(s) of the internal schedule, less the estimator's settling,
    must last at least that long (gating can only take more away). External-marker protocols
    and fixed thresholds without a baseline are not judged here."""
    if p.markers.mode != "internal" or p.baseline.block not in [b.label for b in p.blocks]:
        return None
    total = sum(b.duration_s for b in p.schedule() if b.label == p.baseline.block)
    settle = SETTLING_S.get(p.signal.estimator, 2.0)
    if total - settle + 1e-9 < p.baseline.min_clean_s:
        return (f"[baseline] block {p.baseline.block!r} lasts {total:g} s, {total - settle:g} s after the "
                f"{p.signal.estimator} estimator's {settle:g}-s settling, less than [baseline] min_clean_s = "
                f"{p.baseline.min_clean_s:g} s; lengthen the baseline block (or lower min_clean_s knowingly)")
    return None


def redact_sham(text: str) -> str:
    """Protocol TOML text without its ``[sham]`` table (what a blinded session stores)."""
    out, skipping = [], False
    for line in text.splitlines(keepends=True):
        head = line.strip()
        if head.startswith("["):
            skipping = head.replace(" ", "") == "[sham]"
        if not skipping:
            out.append(line)
    return "".join(out)


def _check_sides(s: SignalSpec, src: str) -> None:
    """combine = left/right/asymmetry needs exactly one target on each side it uses, by name."""
    if s.combine == "mean":
        return
    sides = {t: hemisphere(t) for t in s.targets}
    unknown = [t for t, h in sides.items() if h is None]
    if unknown:
        raise ProtocolError(f"{src}: [signal] combine = {s.combine!r} needs 10-10 target names to tell left from "
                            f"right (odd number = left, even = right); {unknown[0]!r} is not one.")
    need = {"left": ("left",), "right": ("right",), "asymmetry": ("left", "right")}[s.combine]
    for side in need:
        on_side = [t for t, h in sides.items() if h == side]
        if len(on_side) != 1:
            example = "C3" if side == "left" else "C4"
            got = f"{len(on_side)} are {side} ({', '.join(on_side)})" if on_side else f"none is {side}"
            raise ProtocolError(
                f"{src}: [signal] combine = {s.combine!r} needs exactly one {side}-hemisphere target "
                f"({'odd' if side == 'left' else 'even'} number, e.g. {example}); of {', '.join(s.targets)}: {got}.")


def protocol_dirs() -> list[Path]:
    """Folders searched for a protocol given by name, the first found wins: ``$NEUROFEED_PROTOCOLS``
    folders (last first), the user's folder (``~/.config/neurofeed/protocols`` on Linux), the shipped library."""
    return [folder for _, folder in reversed(search_dirs("protocols"))]


def protocol_files() -> list[Path]:
    """Every protocol file by name (a user protocol hides a shipped one of the same name), sorted."""
    return [f.path for f in library_files("protocols").values()]


def resolve_protocol(name_or_path) -> Path:
    """A protocol file: the path as given, or ``<name>.toml`` from the user's protocol folder or
    the shipped library for a bare name (``demo``)."""
    p = Path(name_or_path)
    if p.exists() or p.suffix or len(p.parts) > 1:
        return p
    for folder in protocol_dirs():
        if (folder / f"{p.name}.toml").exists():
            return folder / f"{p.name}.toml"
    return p


def load_protocol(path) -> Protocol:
    """Read and validate a protocol file (a path, or a bare name resolved by :func:`resolve_protocol`)."""
    path = resolve_protocol(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProtocolError(f"{path}: no such protocol file (see `neurofeed protocols list`).") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ProtocolError(f"{path}: cannot read protocol file: {err}.") from None
    proto = parse_protocol(text, str(path))
    check_protocol_name(proto.name, str(path))
    proto.path = path
    return proto


def check_band(proto: Protocol, sfreq: float) -> None:
    """Raise if the protocol's bands do not fit below Nyquist at ``sfreq``."""
    nyq = sfreq / 2
    hi = proto.signal.band_hz[1] + (proto.signal.individual_width_hz if proto.signal.band_mode == "individual" else 0)
    if hi >= nyq:
        raise ProtocolError(f"{proto.path or proto.name}: [signal] band_hz {proto.signal.band_hz} reaches Nyquist "
                            f"({nyq:g} Hz at {sfreq:g} Hz); lower the band or use a faster board.")
