"""LSL outlets: the feedback values as a regular stream and the events as markers.

LabRecorder records them beside the EEG; stimulus software can react to rewards.
"""

from __future__ import annotations

import numpy as np


class LSLOutlets:
    """Two outlets: ``<name>-feedback`` (float32: SI combined, SI per target, threshold, reward,
    feedback, gated) at the update rate, and ``<name>-events`` (string markers).

    Parameters
    ----------
    targets : list of str
    name : str
        Stream name prefix.
    source_id : str
        Unique id so LabRecorder can reconnect after a restart.
    """

    publish_first = True  # latency helper: the pipeline pushes each state here before its other sinks

    def __init__(self, targets, name: str = "neurofeed", source_id: str = "neurofeed"):
        import pylsl

        labels = ["si_combined"] + [f"si_{t}" for t in targets] + ["threshold", "reward", "feedback", "gated"]
        info = pylsl.StreamInfo(f"{name}-feedback", "Feedback", len(labels), pylsl.IRREGULAR_RATE,
                                pylsl.cf_float32, f"{source_id}-feedback")
        chans = info.desc().append_child("channels")
        for label in labels:
            ch = chans.append_child("channel")
            ch.append_child_value("label", label)
            ch.append_child_value("unit", "log10 ratio" if label.startswith("si") or label == "threshold" else "")
        self.values = pylsl.StreamOutlet(info)
        minfo = pylsl.StreamInfo(f"{name}-events", "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string,
                                 f"{source_id}-events")
        self.markers = pylsl.StreamOutlet(minfo)
        self._row = np.zeros(len(labels), dtype=np.float32)
        self.labels = labels

    def on_state(self, st) -> None:
        r = self._row
        k = len(st.si)
        r[0] = st.si_combined
        r[1:1 + k] = st.si
        r[1 + k] = st.threshold
        r[2 + k] = st.reward
        r[3 + k] = st.feedback
        r[4 + k] = st.gated
        self.values.push_sample(r)

    def on_events(self, events) -> None:
        for e in events:
            self.markers.push_sample([e.text])
