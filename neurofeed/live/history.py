"""The recent history of the published states, for the console's plots."""

from __future__ import annotations

import numpy as np


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
