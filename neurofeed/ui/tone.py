"""The audible reward tone (``[feedback] tone = true``).

PySide6-Essentials has no QtMultimedia, so the tone is a short WAV written once (a 660-Hz sine,
150 ms, 15-ms raised-cosine fades so it never clicks, at a gentle level) and played by the
system's own player without waiting (``paplay``/``pw-play``/``aplay`` on Linux, ``afplay`` on
macOS, ``winsound`` on Windows). Where none exists the tone is only logged: the view logs every
tone as an event either way, so the recording says when the participant heard (or would have
heard) it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

PLAYERS = ("paplay", "pw-play", "aplay", "afplay")


def write_tone_wav(path, freq_hz: float = 660.0, dur_s: float = 0.15, level: float = 0.25,
                   sfreq: int = 22050) -> Path:
    """Write a mono 16-bit WAV of a sine with raised-cosine fades; returns ``path``."""
    n = int(dur_s * sfreq)
    t = np.arange(n) / sfreq
    y = level * np.sin(2 * np.pi * freq_hz * t)
    ramp = int(0.015 * sfreq)
    fade = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
    y[:ramp] *= fade
    y[-ramp:] *= fade[::-1]
    path = Path(path)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sfreq)
        w.writeframes((y * 32767).astype("<i2").tobytes())
    return path


def find_player() -> list[str] | None:
    """The command that plays a WAV here (without its file argument), or None."""
    if sys.platform == "win32":
        return ["winsound"]
    for name in PLAYERS:
        exe = shutil.which(name)
        if exe:
            return [exe, "-q"] if name == "aplay" else [exe]
    return None


class RewardTone:
    """Plays the reward tone without blocking the GUI.

    Parameters
    ----------
    player : list of str or None or "auto"
        The play command (the WAV path is appended); ``None`` logs only; ``"auto"`` looks one up.
    """

    def __init__(self, player="auto"):
        self.player = find_player() if player == "auto" else player
        self.path = write_tone_wav(Path(tempfile.gettempdir()) / "neurofeed-reward-tone.wav")
        self.played = 0
        self._proc = None

    @property
    def audible(self) -> bool:
        return self.player is not None

    def play(self) -> bool:
        """Start the tone (returns at once); False when there is no player (log-only)."""
        self.played += 1
        if not self.player:
            return False
        try:
            if self.player == ["winsound"]:
                import winsound

                winsound.PlaySound(str(self.path), winsound.SND_FILENAME | winsound.SND_ASYNC)
                return True
            if self._proc is not None and self._proc.poll() is None:
                return True  # the previous tone is still sounding: never stack them
            self._proc = subprocess.Popen([*self.player, str(self.path)], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL)
            return True
        except OSError:
            self.player = None  # no audio after all: log-only from now on
            return False
