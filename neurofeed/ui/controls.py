"""What the operator's keys do, and how the SI that decides the reward is labelled: one definition
shared by the windows (:mod:`.display`) and the terminal view (:mod:`.terminal`).

A key is named as the terminal and Qt both can name it (``"space"``, ``"up"``, ``"escape"``,
``"b"``, ``"["``); each view maps its own key events to these names and runs the action of the
same name on itself (``Views.toggle_pause``, ``TerminalControls.toggle_pause``, ...).
"""

from __future__ import annotations

import math

NUDGE_SI = 0.05  # one nudge of the threshold (SI units, log10 power ratio)
EXTEND_S = 30.0  # one extension of the current block (s)

# (key names, action, hint shown to the operator); the first name is the one the hint shows
KEYS = ((("space",), "toggle_pause", "Space", "pause feedback"),
        (("p",), "toggle_schedule", "P", "pause schedule"),
        (("l",), "toggle_lock", "L", "lock threshold"),
        (("up", "+", "="), "nudge_up", "↑/↓", f"threshold ±{NUDGE_SI:g}"),
        (("down", "-"), "nudge_down", None, None),
        (("s",), "skip_block", "S", "skip block"),
        (("e",), "extend_block", "E", f"extend +{EXTEND_S:g} s"),
        (("[",), "select_previous", "[ ]", "select channel"),
        (("]",), "select_next", None, None),
        (("b",), "toggle_bad_channel", "B", "mark channel bad/good"),
        (("d",), "next_delay", "D", "next delay design"),
        (("n",), "add_note", "N", "note"),
        (("m",), "marker", "M", "marker"),
        (("r",), "rebaseline", "R", "re-baseline"),
        (("escape",), "end_with_confirmation", "Esc", "end session"))

KEYMAP = {name: action for names, action, _, _ in KEYS for name in names}  # key name -> action
KEY_HINTS = tuple((label, hint) for _, _, label, hint in KEYS if label)


def reward_si(st) -> float:
    """The SI the reward rule compares with the threshold (the engine's ``RewardRule.step`` is fed
    ``si_combined``: the combined SI before the bar's smoothing)."""
    return st.si_combined


def reward_rule_words(direction: str) -> str:
    """``"reward when SI is below thr"`` (``up``: more suppression) or ``above`` (``down``), as
    :meth:`~neurofeed.protocol.reward.RewardRule.condition` decides."""
    return "reward when SI is below thr" if direction == "up" else "reward when SI is above thr"


def number_text(v, spec: str = "+.2f") -> str:
    """``v`` formatted with ``spec``, or ``"—"`` for a value not known yet (None or NaN): how the
    views write a number."""
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def si_text(st, spec: str = "+.2f") -> str:
    """``"SI -0.31 thr -0.25 (up: reward when SI is below thr)"``: the value that decides the
    reward, the threshold and the rule between them; ``"bar SI …"`` follows where the bar shows a
    smoothed value that differs from it."""
    def f(v):
        return number_text(v, spec)

    out = f"SI {f(reward_si(st))} thr {f(st.threshold)} ({st.direction}: {reward_rule_words(st.direction)})"
    bar = getattr(st, "si_bar", math.nan)
    si = reward_si(st)
    if bar == bar and si == si and abs(bar - si) >= 0.005:
        out += f" bar SI (smoothed) {f(bar)}"
    return out
