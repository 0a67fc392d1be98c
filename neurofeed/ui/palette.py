"""The views' two colour sets (hex strings): the standard view and the low-stimulation ("gentle") one.

Qt-free, so the command line and the tests can name the colours without importing Qt.
"""

from __future__ import annotations

STANDARD = {"bg": "#101820", "bar": "#4a90c2", "reward": "#3cc47c", "thr": "#f2f2f2", "text": "#f2f2f2",
            "stim_bg": "#000000", "dot": "#ffffff"}
GENTLE = {"bg": "#e9e4da", "bar": "#9fb4c7", "reward": "#a8c9a4", "thr": "#6b6b6b", "text": "#3d3d3d",
          "stim_bg": "#26292e", "dot": "#f4f1ea"}


def colours(low_stimulation: bool) -> dict:
    """The colour set of a protocol's ``[feedback] style``: :data:`GENTLE` for low stimulation."""
    return GENTLE if low_stimulation else STANDARD
