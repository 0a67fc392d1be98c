"""LSL outlets: the feedback record as a regular stream and the events as markers.

LabRecorder records them beside the EEG; stimulus software can react to rewards. Clinician notes
stay in the recording: they are free text and are streamed only when asked for (``--lsl-notes``).

Timestamps: a feedback sample is stamped with the LSL time of the newest EEG sample it describes
(the source's timestamp on the host clock, ``FeedbackState.sample_ns``, mapped to
``pylsl.local_clock()``), and an event with the LSL time of its own sample, counted back from that
newest sample at the sampling rate; not with the time it is pushed.
"""

from __future__ import annotations

import datetime as dt
import time

import numpy as np

from ..core.record import NOT_STREAMED, active_fields, record_fields, state_to_row

#: Event prefixes kept off the network unless ``notes=True`` (``--lsl-notes``): clinician notes are free text
NOT_BROADCAST = ("note/",)


def session_source_id(prefix: str, participant: str, stamp: str | None = None) -> str:
    """``<prefix>-<participant>-<YYYYmmdd-HHMMSS>``: one session's LSL source id, unique per session,
    so that LabRecorder tells two sessions on one network apart and reconnects to the right one.
    ``stamp`` is the session folder's time stamp (default: now)."""
    return f"{prefix}-{participant}-{stamp or dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"


class LSLOutlets:
    """Two outlets: ``<name>-feedback`` (float32, one channel per column of the feedback record
    of :mod:`neurofeed.core.record` except ``sample_index``; the first is ``si_combined``, the
    unsmoothed combined SI) at the update rate, and ``<name>-events`` (string markers).

    Parameters
    ----------
    targets : list of str
    name : str
        Stream name prefix.
    source_id : str
        Unique per session (:func:`session_source_id`), so LabRecorder can tell sessions apart
        and reconnect to the right one after a restart; the outlets add ``-feedback``/``-events``.
    notes : bool
        Stream clinician notes (``note/...``, free text) on the events outlet; default False:
        they stay in the recording.
    sfreq : float, optional
        The EEG sampling rate (Hz), to stamp an event at its own sample; without it events take
        the stamp of the newest sample.
    """

    publish_first = True  # the pipeline pushes each state here before its other sinks

    def __init__(self, targets, name: str = "neurofeed", source_id: str = "neurofeed", notes: bool = False,
                 sfreq: float | None = None):
        import pylsl

        self._local_clock = pylsl.local_clock
        # host perf_counter -> LSL clock (both monotonic; the offset is fixed at start)
        self._lsl_minus_perf_s = pylsl.local_clock() - time.perf_counter()
        self.notes = bool(notes)
        self.sfreq = sfreq
        self._last_sample, self._last_ts = None, None  # (sample_index, LSL time) of the newest state

        cols = record_fields(targets)
        self._fields = active_fields()
        self._keep = np.array([c not in NOT_STREAMED for c, _ in cols])
        labels = [c for c, _ in cols if c not in NOT_STREAMED]
        info = pylsl.StreamInfo(f"{name}-feedback", "Feedback", len(labels), pylsl.IRREGULAR_RATE,
                                pylsl.cf_float32, f"{source_id}-feedback")
        chans = info.desc().append_child("channels")
        for label, f in cols:
            if label in NOT_STREAMED:
                continue
            ch = chans.append_child("channel")
            ch.append_child_value("label", label)
            ch.append_child_value("unit", f.unit)
        self.values = pylsl.StreamOutlet(info)
        minfo = pylsl.StreamInfo(f"{name}-events", "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string,
                                 f"{source_id}-events")
        self.markers = pylsl.StreamOutlet(minfo)
        self._full = np.zeros(len(cols))
        self._row = np.zeros(len(labels), dtype=np.float32)
        self.labels = labels

    def lsl_time(self, sample_ns: int) -> float:
        """The LSL time (``pylsl.local_clock()`` seconds) of a host ``perf_counter_ns`` time."""
        return sample_ns / 1e9 + self._lsl_minus_perf_s

    def on_state(self, st) -> None:
        state_to_row(st, self._full, self._fields)
        self._row[:] = self._full[self._keep]
        # states without a sample time (signal lost: no sample) take the push time
        ts = self.lsl_time(st.sample_ns) if st.sample_ns else self._local_clock()
        self._last_sample, self._last_ts = st.sample_index, ts
        self.values.push_sample(self._row, ts)

    def event_time(self, sample: int) -> float:
        """The LSL time of sample index ``sample`` (an event's; counted back from the newest
        state's newest sample, index ``sample_index - 1``)."""
        if self._last_ts is None:
            return self._local_clock()
        if not self.sfreq:
            return self._last_ts
        return self._last_ts - (self._last_sample - 1 - sample) / self.sfreq

    def on_events(self, events) -> None:
        for e in events:
            if self.notes or not e.text.startswith(NOT_BROADCAST):
                self.markers.push_sample([e.text], self.event_time(e.sample))
