"""Action-observation stimuli that ship: procedural point-light biological motion.

Point-light displays (Johansson 1973) show a moving body as a few dots on the joints; watching
them suppresses the mu rhythm over sensorimotor cortex, and their *scrambled* versions (the
same dots with the same local motion, but displaced start positions and phases, so no body is
seen) are the classic control (Ulloa & Pineda 2007). Everything here is generated from simple
kinematic models at the display's frame rate: no files, no licence.

Protocols select a stimulus per block with ``stimuli = "builtin:NAME"`` (see :data:`BUILTIN`);
any other value is a folder of images (relative to the protocol file, else to the shipped library,
whose ``protocols/stimuli/`` sets ship with the package), shown in turn.
:class:`StimulusPlayer` (no Qt) decides what is on screen at a given time and reports every
onset (a new action, walk or image) so that the view can log it as an event.

Coordinates are normalised: x and y in [-1, 1], y up; the view maps them to its rectangle.

References
----------
.. [1] G. Johansson, "Visual perception of biological motion and a model for its analysis",
   Perception & Psychophysics 14, 201-211 (1973).
.. [2] E. R. Ulloa, J. A. Pineda, "Recognition of point-light biological motion: mu rhythms and
   mirror neuron activity", Behavioural Brain Research 183, 188-194 (2007).
.. [3] T. Flash, N. Hogan, "The coordination of arm movements: an experimentally confirmed
   mathematical model", Journal of Neuroscience 5, 1688-1703 (1985) (minimum-jerk reaches).
.. [4] M. Jeannerod, "The timing of natural prehension movements", Journal of Motor Behavior
   16, 235-254 (1984) (maximum grip aperture at ~70 % of the reach).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

PREFIX = "builtin:"
IMAGE_S = 4.0  # an image from a folder stays 4 s
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def min_jerk(s):
    """Minimum-jerk position profile 10s³ − 15s⁴ + 6s⁵ for s in [0, 1] (clipped) [3]_."""
    s = np.clip(s, 0.0, 1.0)
    return s * s * s * (10.0 + s * (-15.0 + 6.0 * s))


class PointLightWalker:
    """A walker seen from the side, walking on the spot (13 dots: head, and both shoulders,
    elbows, wrists, hips, knees, ankles), from a two-link leg and arm with sinusoidal joint angles.

    Each trial (``trial_s``) is one walk; the facing direction alternates right, left.
    """

    name = "point-light-walker"
    n_dots = 13
    trial_s = 4.0
    period_s = 1.1  # one gait cycle (two steps): ~110 steps/min, an ordinary walking pace

    # segment lengths (m) of a 1.75-m adult; scaled by 1/1.0 to the [-1, 1] box below
    THIGH, SHANK, TRUNK, NECK, UPPER_ARM, FOREARM = 0.45, 0.44, 0.52, 0.24, 0.30, 0.27
    HIP_Y = -0.06  # hip height in box units: ankles reach ~ -0.95, head ~ +0.70

    def variant(self, trial: int) -> str:
        return "facing-right" if trial % 2 == 0 else "facing-left"

    def positions(self, t_s: float, trial: int = 0, out=None) -> np.ndarray:
        """Dot positions (n_dots × 2, box units) at ``t_s`` seconds into ``trial``."""
        out = np.empty((self.n_dots, 2)) if out is None else out
        phi = 2.0 * math.pi * t_s / self.period_s
        hip = np.array([0.0, self.HIP_Y + 0.02 * math.cos(2.0 * phi)])  # the body bobs twice a cycle
        shoulder = hip + (0.0, self.TRUNK)
        out[0] = shoulder + (0.03, self.NECK)  # head
        k = 1
        for side, ph in ((0, phi), (1, phi + math.pi)):  # left, right: half a cycle apart
            hip_a = 0.38 * math.sin(ph)  # thigh angle from vertical, forward positive (rad)
            knee_flex = 0.08 + 0.95 * (0.5 + 0.5 * math.cos(ph - 0.4)) ** 3  # flexes in the swing
            shoulder_a = -0.35 * math.sin(ph)  # arms swing against the legs
            elbow_flex = 0.25 + 0.25 * (0.5 + 0.5 * math.sin(ph + math.pi))
            dx = 0.02 if side == 0 else -0.02  # a little depth between the near and far side
            s = shoulder + (dx, 0.0)
            elbow = s + self.UPPER_ARM * np.array([math.sin(shoulder_a), -math.cos(shoulder_a)])
            wrist = elbow + self.FOREARM * np.array([math.sin(shoulder_a + elbow_flex),
                                                    -math.cos(shoulder_a + elbow_flex)])
            h = hip + (dx, 0.0)
            knee = h + self.THIGH * np.array([math.sin(hip_a), -math.cos(hip_a)])
            ankle = knee + self.SHANK * np.array([math.sin(hip_a - knee_flex), -math.cos(hip_a - knee_flex)])
            out[k:k + 6] = (s, elbow, wrist, h, knee, ankle)
            k += 6
        if trial % 2:
            out[:, 0] *= -1.0
        return out


class PointLightHands:
    """A right arm and hand reaching for, grasping, lifting and putting down an object (10 dots:
    shoulder, elbow, wrist, index knuckle, index middle joint, index tip, thumb base, thumb
    joint, thumb tip, little-finger knuckle), seen from the side.

    The wrist follows minimum-jerk reaches [3]_; shoulder and elbow angles follow from a two-link
    inverse kinematics; the grip aperture opens to its maximum at ~70 % of the reach and closes
    on the object [4]_. Each trial (``trial_s``) is one action; the object's place changes.
    """

    name = "point-light-hands"
    n_dots = 10
    trial_s = 3.2
    UPPER_ARM, FOREARM = 0.62, 0.56
    SHOULDER = np.array([-0.55, 0.40])
    REST = np.array([-0.55, -0.45])  # wrist at rest, on the table near the body
    TARGETS = (("reach-near", np.array([0.05, -0.40])), ("reach-far", np.array([0.25, -0.35])),
               ("reach-high", np.array([0.20, -0.05])))
    CENTRE, ZOOM = np.array([-0.19, -0.18]), 1.19
    # the action's phases (s): reach, lift, put down, release and return
    T_REACH, T_LIFT, T_PLACE, T_END = 1.0, 1.6, 2.2, 3.1

    def variant(self, trial: int) -> str:
        return self.TARGETS[trial % len(self.TARGETS)][0]

    def _wrist_and_aperture(self, t: float, target: np.ndarray):
        obj = 0.08  # the object's width: the grip closes to it
        if t < self.T_REACH:
            s = t / self.T_REACH
            w = self.REST + (target - self.REST) * min_jerk(s)
            peak = 0.7  # maximum grip aperture at 70 % of the reach
            ap = 0.02 + 0.16 * math.sin(0.5 * math.pi * s / peak) if s < peak else \
                obj + (0.18 - obj) * (0.5 + 0.5 * math.cos(math.pi * (s - peak) / (1 - peak)))
        elif t < self.T_LIFT:
            w = target + (0.0, 0.18 * float(min_jerk((t - self.T_REACH) / (self.T_LIFT - self.T_REACH))))
            ap = obj
        elif t < self.T_PLACE:
            w = target + (0.0, 0.18 * (1.0 - float(min_jerk((t - self.T_LIFT) / (self.T_PLACE - self.T_LIFT)))))
            ap = obj
        else:
            s = (t - self.T_PLACE) / (self.T_END - self.T_PLACE)
            w = target + (self.REST - target) * min_jerk(s)
            ap = obj + 0.06 * math.sin(math.pi * min(1.0, s * 1.5)) if s < 2 / 3 else 0.02 + (obj - 0.02) * (1 - s) * 3
        return np.asarray(w, float), float(ap)

    def positions(self, t_s: float, trial: int = 0, out=None) -> np.ndarray:
        """Dot positions (n_dots × 2, box units) at ``t_s`` seconds into ``trial``."""
        out = np.empty((self.n_dots, 2)) if out is None else out
        target = self.TARGETS[trial % len(self.TARGETS)][1]
        wrist, ap = self._wrist_and_aperture(min(t_s, self.trial_s), target)
        # two-link inverse kinematics (the elbow behind and below the line shoulder–wrist)
        d = wrist - self.SHOULDER
        r = min(float(np.hypot(*d)), self.UPPER_ARM + self.FOREARM - 1e-6)
        wrist = self.SHOULDER + d * (r / max(float(np.hypot(*d)), 1e-12))  # within reach, always
        cos_e = (r * r - self.UPPER_ARM ** 2 - self.FOREARM ** 2) / (2 * self.UPPER_ARM * self.FOREARM)
        elbow_a = math.acos(max(-1.0, min(1.0, cos_e)))
        base = math.atan2(d[1], d[0])
        sh_a = base - math.atan2(self.FOREARM * math.sin(elbow_a), self.UPPER_ARM + self.FOREARM * math.cos(elbow_a))
        elbow = self.SHOULDER + self.UPPER_ARM * np.array([math.cos(sh_a), math.sin(sh_a)])
        fore = math.atan2(wrist[1] - elbow[1], wrist[0] - elbow[0])
        hand_a = fore - 0.35  # the hand pitched a little down, towards the object
        u = np.array([math.cos(hand_a), math.sin(hand_a)])  # along the hand
        n = np.array([-u[1], u[0]])  # across the hand (up)
        h = 1.3  # hand size relative to the arm (a hand is ~0.6 of an upper arm)
        knuckle = wrist + h * 0.14 * u
        # fingers: index above, thumb below; the aperture is the distance between their tips
        index_pip = knuckle + h * (0.07 * u + 0.02 * n)
        index_tip = wrist + h * 0.26 * u + 0.5 * ap * n
        thumb_base = wrist + h * (0.05 * u - 0.04 * n)
        thumb_tip = wrist + h * 0.22 * u - 0.5 * ap * n
        thumb_ip = 0.5 * (thumb_base + thumb_tip) - h * 0.02 * n
        little = wrist + h * (0.12 * u + 0.05 * n)
        out[:] = (self.SHOULDER, elbow, wrist, knuckle, index_pip, index_tip, thumb_base, thumb_ip, thumb_tip, little)
        out -= self.CENTRE  # the action's workspace, centred and enlarged to fill the box
        out *= self.ZOOM
        return out


class Scrambled:
    """The scrambled control of a point-light model: every dot keeps its own trajectory (the
    same local motion), but starts at a random place within the figure's bounding box and at a
    random phase, so no body can be seen [2]_. Deterministic for a given ``seed``.
    """

    def __init__(self, model, seed: int = 7):
        self.model = model
        self.name = "scrambled-" + model.name.removeprefix("point-light-")
        self.n_dots = model.n_dots
        self.trial_s = model.trial_s
        rng = np.random.default_rng(seed)
        ts = np.linspace(0.0, model.trial_s, 64, endpoint=False)
        tracks = np.stack([model.positions(t, k) for k in range(6) for t in ts])  # (trials·time) × dots × 2
        self._mean = tracks.mean(axis=0)
        lo, hi = tracks.reshape(-1, 2).min(axis=0), tracks.reshape(-1, 2).max(axis=0)
        # each dot's new centre: within the figure's bounding box, and such that its own motion
        # (its excursion around its mean) stays inside the [-0.95, 0.95] box
        dev_lo, dev_hi = (tracks - self._mean).min(axis=0), (tracks - self._mean).max(axis=0)
        a = np.maximum(lo, -0.95 - dev_lo)
        b = np.minimum(hi, 0.95 - dev_hi)
        b = np.maximum(a, b)
        self._place = a + rng.uniform(size=(self.n_dots, 2)) * (b - a)
        self._phase = rng.uniform(0.0, model.trial_s, size=self.n_dots)
        self._tmp = np.empty((self.n_dots, 2))

    def variant(self, trial: int) -> str:
        return self.model.variant(trial)

    def positions(self, t_s: float, trial: int = 0, out=None) -> np.ndarray:
        """Dot positions (n_dots × 2, box units) at ``t_s`` seconds into ``trial``."""
        out = np.empty((self.n_dots, 2)) if out is None else out
        for i in range(self.n_dots):
            p = self.model.positions((t_s + self._phase[i]) % self.trial_s, trial, out=self._tmp)
            out[i] = p[i] - self._mean[i] + self._place[i]
        return out


BUILTIN = {
    "point-light-walker": PointLightWalker,
    "point-light-hands": PointLightHands,
    "scrambled-walker": lambda: Scrambled(PointLightWalker(), seed=7),
    "scrambled-hands": lambda: Scrambled(PointLightHands(), seed=7),
}


def is_builtin(spec: str) -> bool:
    """True for ``"builtin:..."`` stimuli."""
    return bool(spec) and spec.startswith(PREFIX)


def check_stimuli(spec: str, where: str = "stimuli") -> None:
    """Raise a one-line error for an unknown ``builtin:`` stimulus (folders are not checked here)."""
    if is_builtin(spec) and spec[len(PREFIX):] not in BUILTIN:
        from ..core.errors import NeurofeedError

        raise NeurofeedError(f"{where} = {spec!r} is not a built-in stimulus; use one of "
                             + ", ".join(PREFIX + k for k in BUILTIN) + ", or a folder of images.")


def stimulus_images(spec: str, base_dir: Path | None = None) -> tuple[Path, list[Path]]:
    """The image folder ``spec`` names and its PNG/JPEG images, sorted.

    The folder is relative to ``base_dir`` (the protocol file's folder); where that has no such
    folder, the shipped library's is used, so a shipped protocol copied into the user folder still
    finds the shipped image sets. Returns the folder looked at (the first candidate when none
    exists) and its images (empty when it is missing or holds none)."""
    from ..core.library import shipped_dir

    base = Path(base_dir) if base_dir else Path(".")
    candidates = [base / spec]
    if not Path(spec).is_absolute():
        candidates.append(shipped_dir("protocols") / spec)
    for folder in candidates:
        if folder.is_dir():
            return folder, sorted(q for q in folder.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES)
    return candidates[0], []


def check_protocol_stimuli(protocol) -> None:
    """Check every block's stimuli before a session (and in ``protocols check``): an unknown
    ``builtin:`` name, or an image folder that is missing or holds no PNG/JPEG images, is a one-line
    :class:`NeurofeedError` naming the file, the block and the folder, so that it does not surface
    as a blank pane in the middle of a session."""
    from ..core.errors import NeurofeedError

    src = str(protocol.path) if protocol.path else protocol.name
    base = Path(protocol.path).parent if protocol.path else None
    for b in protocol.blocks:
        where = f"{src}: [[blocks]] {b.label!r} stimuli"
        check_stimuli(b.stimuli, where)
        if b.stimuli and not is_builtin(b.stimuli):
            folder, images = stimulus_images(b.stimuli, base)
            if not images:
                what = "holds no PNG/JPEG images" if folder.is_dir() else "does not exist"
                raise NeurofeedError(f"{where} = {b.stimuli!r}: folder {folder} {what}; put the images there "
                                     f"or use a built-in set ({', '.join(PREFIX + k for k in BUILTIN)}).")


def builtin_stimulus(spec: str):
    """The point-light model named by ``"builtin:NAME"``."""
    check_stimuli(spec)
    return BUILTIN[spec[len(PREFIX):]]()


class StimulusPlayer:
    """What the participant view shows for a block's ``stimuli`` value, and when each onset is.

    Call :meth:`set_spec` with the current state's ``stimuli`` and :meth:`advance` with a clock
    (s) at every frame; ``advance`` returns the ids of the onsets that happened (usually none),
    e.g. ``"point-light-hands/002/reach-high"`` or ``"image/stimuli/static/a.png"``. Then
    ``dots`` (n × 2, box units) or ``image`` (a path) is what to draw. No Qt here.

    Parameters
    ----------
    base_dir : Path, optional
        The folder image folders are relative to (the protocol file's folder).
    """

    def __init__(self, base_dir: Path | None = None):
        self.base_dir = Path(base_dir) if base_dir else Path(".")
        self.spec = ""
        self.model = None
        self.images: list[Path] = []
        self.image: Path | None = None
        self.dots: np.ndarray | None = None
        self.trial = -1
        self._t0 = None
        self.error = ""

    def set_spec(self, spec: str, now_s: float) -> None:
        """Switch to a new block's stimuli (no-op when unchanged); the first onset is at ``now_s``."""
        if spec == self.spec:
            return
        self.spec, self.model, self.images, self.image, self.dots, self.error = spec, None, [], None, None, ""
        self.trial, self._t0 = -1, now_s
        if not spec:
            return
        if is_builtin(spec):
            try:
                self.model = builtin_stimulus(spec)
            except Exception as err:  # noqa: BLE001 - shown on the console, the session goes on
                self.error = str(err)
                return
            self.dots = np.empty((self.model.n_dots, 2))
            return
        folder, self.images = stimulus_images(spec, self.base_dir)
        if not self.images:
            self.error = f"stimuli folder {folder} has no PNG/JPEG images"

    @property
    def period_s(self) -> float:
        return self.model.trial_s if self.model is not None else IMAGE_S

    def advance(self, now_s: float) -> list[str]:
        """Move to ``now_s``; return the onsets (ids) since the previous call."""
        if self._t0 is None or (self.model is None and not self.images):
            return []
        t = max(0.0, now_s - self._t0)
        trial = int(t // self.period_s)
        onsets = []
        if trial != self.trial:
            self.trial = trial
            if self.model is not None:
                onsets.append(f"{self.model.name}/{trial:03d}/{self.model.variant(trial)}")
            else:
                self.image = self.images[trial % len(self.images)]
                onsets.append(f"image/{self.spec.rstrip('/')}/{self.image.name}")
        if self.model is not None:
            self.model.positions(t - trial * self.period_s, trial, out=self.dots)
        return onsets
