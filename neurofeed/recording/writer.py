"""Crash-safe session recording: an fsynced journal as the session goes, BDF+ at the end."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import queue
import shutil
import threading
import time
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import RecordingError
from ..record import active_fields, record_columns, state_to_row
from .journal import CHUNKS, EVENTS, FEEDBACK, GAPS, HEADER, SAMPLES, SIDECAR, TIMESTAMPS

log = logging.getLogger(__name__)
SYNC_EVERY_S = 0.5  # flush + fsync at least this often (the promise is every second)


def session_folder(root, participant: str, protocol_name: str) -> Path:
    """``root/<participant>/<YYYYmmdd-HHMMSS>_<protocol>``."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(root) / participant / f"{stamp}_{protocol_name}"


def check_participant_code(code: str) -> str:
    """A participant code: letters, digits, '-' and '_' only (a code, never a name)."""
    if not code or not all(c.isalnum() or c in "-_" for c in code) or len(code) > 32:
        raise RecordingError(f"Participant code {code!r} is not valid: use a short code of letters, digits, '-' or "
                             f"'_' (e.g. P01), never a name.")
    return code


def gap_runs(mask: np.ndarray, offset: int = 0) -> np.ndarray:
    """Runs of True in ``mask`` as int64 ``(first sample + offset, length)`` pairs, flattened."""
    m = np.concatenate(([False], np.asarray(mask, dtype=bool), [False]))
    edges = np.flatnonzero(m[1:] != m[:-1])
    starts, ends = edges[0::2], edges[1::2]
    return np.column_stack([starts + offset, ends - starts]).astype(np.int64).reshape(-1)


class Recorder:
    """Writes a session journal from the acquisition thread without blocking it.

    ``on_chunk``, ``on_state`` and ``on_events`` only enqueue; a writer thread appends to the
    journal files and flushes + fsyncs them every ``SYNC_EVERY_S``. A write error (disk full,
    folder removed) stops the session: the next ``on_chunk`` raises :class:`RecordingError`.

    Parameters
    ----------
    folder : Path
        The session folder (created).
    header : dict
        Must hold ``ch_names``, ``sfreq``, ``targets``, ``range_uv``, ``participant``.
    expected_s : float
        Expected session length, to check free disk space at start.
    """

    def __init__(self, folder, header: dict, expected_s: float = 3600.0):
        self.folder = Path(folder)
        self._fields = active_fields()
        columns = record_columns(header["targets"])
        self.header = dict(header, software=f"neurofeed {__version__}",
                           started=dt.datetime.now().isoformat(timespec="seconds"), feedback_columns=columns)
        self.n_ch = len(header["ch_names"])
        self.n_cols = len(columns)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            probe = self.folder / ".write-test"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as err:
            raise RecordingError(f"Cannot write recordings to {self.folder}: {err.strerror or err}; "
                                 f"choose a writable folder with --out.") from None
        need = int(expected_s * header["sfreq"] * (self.n_ch + 1 + 2 * self.n_cols) * 8 * 2) + (50 << 20)
        free = shutil.disk_usage(self.folder).free
        if free < need:
            raise RecordingError(f"Not enough disk space in {self.folder}: {free >> 20} MB free, the session needs "
                                 f"about {need >> 20} MB; free some space or choose another folder with --out.")
        (self.folder / HEADER).write_text(json.dumps(self.header, indent=1))
        self._files = {name: open(self.folder / name, "ab")
                       for name in (SAMPLES, TIMESTAMPS, CHUNKS, GAPS, FEEDBACK, EVENTS)}
        # bounded: a replay or soak run faster than the disk waits here instead of piling up memory
        self._q: queue.Queue = queue.Queue(maxsize=4096)
        self.error: BaseException | None = None
        self.samples_written = 0
        self.samples_queued = 0  # the recording's sample index of the next chunk (acquisition thread)
        self._closed = False
        self._fb_row = np.zeros(self.n_cols)
        self._thread = threading.Thread(target=self._writer, name="neurofeed-recorder", daemon=True)
        self._thread.start()

    # sinks (acquisition thread) --------------------------------------------------------------
    def on_chunk(self, chunk) -> None:
        if self.error is not None:
            raise RecordingError(f"Recording to {self.folder} failed: {self.error}; the session was stopped, "
                                 f"everything up to the failure is kept (neurofeed recover {self.folder}).")
        n = chunk.n_samples
        self._q.put((SAMPLES, np.ascontiguousarray(chunk.data.T).tobytes()))
        ts = chunk.timestamps
        ts = np.full(n, np.nan) if ts is None or len(ts) != n else np.asarray(ts, dtype=np.float64)
        self._q.put((TIMESTAMPS, ts.tobytes()))
        self._q.put((CHUNKS, np.int64(n).tobytes()))
        gap = getattr(chunk, "gap", None)  # True on the NaN columns standing for dropped packets
        if gap is not None and np.any(gap):
            self._q.put((GAPS, gap_runs(gap, self.samples_queued).tobytes()))
        self.samples_queued += n

    def on_state(self, st) -> None:
        self._q.put((FEEDBACK, state_to_row(st, self._fb_row, self._fields).tobytes()))

    def on_events(self, events) -> None:
        text = "".join(json.dumps({"sample": e.sample, "onset_s": e.onset_s, "duration_s": e.duration_s,
                                   "text": e.text}) + "\n" for e in events)
        self._q.put((EVENTS, text.encode()))

    # writer thread ----------------------------------------------------------------------------
    def _sync(self) -> None:
        for f in self._files.values():
            f.flush()
            os.fsync(f.fileno())

    def _writer(self) -> None:
        last_sync = time.monotonic()
        while True:
            try:
                item = self._q.get(timeout=0.1)
            except queue.Empty:
                item = None
            try:
                if item is not None:
                    if item[0] == "close":
                        self._sync()
                        return
                    self._files[item[0]].write(item[1])
                    if item[0] == SAMPLES:
                        self.samples_written += len(item[1]) // (8 * self.n_ch)
                if time.monotonic() - last_sync >= SYNC_EVERY_S:
                    self._sync()
                    last_sync = time.monotonic()
            except OSError as err:
                self.error = err
                log.error("recording failed: %s", err)
                return

    def close(self, summary: dict | None = None, finalize: bool = True) -> Path | None:
        """Drain the queue, fsync, write the sidecar and (by default) the BDF+ file."""
        if self._closed:
            return None
        self._closed = True
        self._q.put(("close", b""))
        self._thread.join(timeout=30)
        for f in self._files.values():
            try:
                f.close()
            except OSError:
                pass
        if summary is not None:
            (self.folder / SIDECAR).write_text(json.dumps(dict(self.header, **summary), indent=1, default=str))
        if self.error is not None:
            log.error("recording incomplete: %s; run `neurofeed recover %s`", self.error, self.folder)
        if finalize:
            from .bdf import write_bdf

            return write_bdf(self.folder)
        return None
