"""Crash-safe session recording: an fsynced journal as the session goes, BDF+ at the end."""

from __future__ import annotations

import collections
import datetime as dt
import json
import logging
import os
import shutil
import struct
import threading
import time
from pathlib import Path

import numpy as np

from .. import __version__
from ..core.errors import RecordingError
from ..core.record import NOT_STREAMED, active_fields, record_columns, state_to_row
from ..protocol.schema import is_safe_name
from .journal import (
    CHUNKS,
    EVENTS,
    FEEDBACK,
    GAPS,
    HEADER,
    RECORDER_EVENTS,
    SAMPLES,
    SIDECAR,
    SPILL,
    START,
    TIMESTAMPS,
    true_runs,
)

log = logging.getLogger(__name__)
SYNC_EVERY_S = 0.5  # flush + fsync at least this often (the promise is every second)
# The writer's queue lives in memory up to this many bytes (payload + a per-item allowance), then
# spills to SPILL: a minute of the richest board BrainFlow reads (32 channels at 1 kHz in 1-sample
# chunks: ~0.7 kB a sample with the item overheads, ~45 MB a minute) fits about three times over.
MEMORY_CAP_BYTES = 128 << 20
ITEM_OVERHEAD_BYTES = 120  # a queued (name, bytes) tuple's own memory, beyond its payload
BEHIND_S = 2.0  # the disk "falls behind" when a chunk queued this long ago (wall clock) is not yet on disk
_NAMES = (SAMPLES, TIMESTAMPS, CHUNKS, GAPS, FEEDBACK, EVENTS, START, "drop", RECORDER_EVENTS)  # item kinds, by spill index
# a spilled item: kind index, its byte offset in its journal file, the recording's sample index
# when it was queued, payload length (offsets let `recover` put every spilled byte in its place)
_FRAME = struct.Struct("<BQQQ")


def session_folder(root, participant: str, protocol_name: str) -> Path:
    """``root/<participant>/<YYYYmmdd-HHMMSS>_<protocol>`` (planned; :func:`create_session_folder`
    makes it, with a suffix when another session took the name in the same second)."""
    check_participant_code(participant)
    if not is_safe_name(protocol_name):  # (protocol files are checked on loading; this guards the folder)
        raise RecordingError(f"Protocol name {protocol_name!r} cannot name a session folder: use ASCII letters, "
                             f"digits, '-' and '_' in [protocol] name.")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(root) / participant / f"{stamp}_{protocol_name}"


def create_session_folder(planned) -> Path:
    """Create ``planned`` exclusively, or ``<planned>-002``, ``-003``, ... when it exists (two sessions
    started in the same second, two rooms, a scripted batch): a session never shares a folder.
    The suffix is zero-padded so that the folders sort by name in the order they were made.

    Raises ``OSError`` when the parent cannot be created or written.
    """
    planned = Path(planned)
    planned.parent.mkdir(parents=True, exist_ok=True)
    for k in range(1, 1000):
        folder = planned if k == 1 else planned.with_name(f"{planned.name}-{k:03d}")
        try:
            folder.mkdir()  # exclusive: fails if another session made it first
            return folder
        except FileExistsError:
            continue
    raise FileExistsError(f"{planned} and 998 suffixed folders exist")


def check_participant_code(code: str) -> str:
    """A participant code: ASCII letters, digits, '-' and '_' only, at most 32 (a code, never a name;
    it becomes a folder name and the BDF header's patient code)."""
    if not is_safe_name(code) or len(code) > 32:
        raise RecordingError(f"Participant code {code!r} is not valid: use a short code of ASCII letters, digits, "
                             f"'-' or '_' (what EDF/BDF and file systems carry; e.g. P01), never a name.")
    return code


def fsync_folder(folder) -> None:
    """fsync a folder so that a rename or a new file in it survives a power cut (no-op where the
    platform cannot open folders)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path, data: bytes) -> None:
    """Write ``path`` whole or not at all: a temporary file, fsync, rename over, fsync the folder."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_folder(path.parent)


class Recorder:
    """Writes a session journal from the acquisition thread without ever blocking it.

    ``on_chunk``, ``on_state`` and ``on_events`` only append to an in-memory queue (no lock the
    disk can hold, no bound that makes them wait). A writer thread appends the queue to the journal
    files and flushes + fsyncs them every ``SYNC_EVERY_S``. When the disk stalls (a USB stick, a
    virus scanner, a network home folder) the queue grows in memory up to ``MEMORY_CAP_BYTES``,
    then a spill thread moves what arrives next to ``spill.bin`` (read back in order by the
    writer); a chunk waiting more than ``BEHIND_S`` is logged as a warning and journaled as a
    ``recording_behind/...`` event in ``recorder.jsonl`` (``recording_caught_up`` when drained;
    both become BDF annotations, apart from the session's replayable events). Samples are dropped
    only when memory itself runs out; they are then counted (``dropped_samples``), written as gap
    samples and annotated ``recording_dropped/<n>``.

    A session killed while items wait in ``spill.bin`` loses only the queue in memory:
    ``recover`` (:func:`restore_spill`) puts the spilled items into the journal at their places.
    At close the journal is ended where the BDF can end exactly (:meth:`_trim_to_bdf`).

    A write error (disk full, folder removed) stops the session: the next ``on_chunk`` raises
    :class:`RecordingError`.

    Parameters
    ----------
    folder : Path
        The planned session folder; created exclusively (with a ``-002``, ``-003`` suffix when taken,
        see ``self.folder``).
    header : dict
        Must hold ``ch_names``, ``sfreq``, ``targets``, ``range_uv``, ``participant``.
    expected_s : float
        Expected session length, to check free disk space at start.
    """

    def __init__(self, folder, header: dict, expected_s: float = 3600.0):
        self._fields = active_fields()
        columns = record_columns(header["targets"])
        self.header = dict(header, software=f"neurofeed {__version__}",
                           started=dt.datetime.now().isoformat(timespec="microseconds"), feedback_columns=columns)
        self.n_ch = len(header["ch_names"])
        self.n_cols = len(columns)
        self.sfreq = float(header["sfreq"])
        try:
            self.folder = create_session_folder(folder)
            probe = self.folder / ".write-test"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as err:
            raise RecordingError(f"Cannot write recordings to {Path(folder)}: {err.strerror or err}; "
                                 f"choose a writable folder with --out.") from None
        need = int(expected_s * self.sfreq * (self.n_ch + 1 + 2 * self.n_cols) * 8 * 2) + (50 << 20)
        free = shutil.disk_usage(self.folder).free
        if free < need:
            raise RecordingError(f"Not enough disk space in {self.folder}: {free >> 20} MB free, the session needs "
                                 f"about {need >> 20} MB; free some space or choose another folder with --out.")
        write_atomic(self.folder / HEADER, json.dumps(self.header, indent=1).encode())
        # opened new ("x"): a session never appends to another's files
        self._files = {name: open(self.folder / name, "xb")
                       for name in (SAMPLES, TIMESTAMPS, CHUNKS, GAPS, FEEDBACK, EVENTS, RECORDER_EVENTS)}
        fsync_folder(self.folder)
        self._mem: collections.deque = collections.deque()  # the queue in memory (acquisition -> writer)
        self._pos = dict.fromkeys(self._files, 0)  # bytes queued so far per journal file (acquisition thread)
        self._overflow: collections.deque = collections.deque()  # past the cap: waits for the spill thread
        self._spilling = False  # new items go to _overflow (then spill.bin) until the writer catches up
        self._mode_lock = threading.Lock()  # held for a few instructions, never across I/O
        self._bytes_in = 0  # queued bytes, counted by the acquisition thread ...
        self._bytes_out = 0  # ... and taken by the writer thread (queued = in - out, no shared counter)
        self._spill_written = 0  # bytes in spill.bin complete (spill thread) ...
        self._spill_read = 0  # ... and read back (writer)
        self._wake = threading.Event()
        self._closing = False
        self.error: BaseException | None = None
        self.samples_written = 0
        self.samples_queued = 0  # the recording's sample index of the next chunk (acquisition thread)
        self.dropped_samples = 0  # lost because memory ran out (counted, annotated)
        self.behind_events = 0  # times the disk fell behind (each logged and journaled)
        self.max_queued_bytes = 0
        self._behind = False
        self._queued_at: collections.deque = collections.deque()  # (samples queued, monotonic s) per chunk
        self._closed = False
        self._fb_row = np.zeros(self.n_cols)
        self._spill_thread = None
        self._thread = threading.Thread(target=self._writer, name="neurofeed-recorder", daemon=True)
        self._thread.start()

    @property
    def queued_bytes(self) -> int:
        """Bytes waiting for the disk (memory and spill file)."""
        return self._bytes_in - self._bytes_out

    # sinks (acquisition thread): append only -----------------------------------------------
    def _advance(self, name: str, payload: bytes) -> int:
        """The item's byte offset in its journal file (what the writer will have written before it)."""
        pos = self._pos
        if name == "drop":
            first, n = struct.unpack("<qq", payload)
            at = pos[SAMPLES]
            for f, size in ((SAMPLES, 8 * n * self.n_ch), (TIMESTAMPS, 8 * n), (CHUNKS, 8), (GAPS, 16),
                            (RECORDER_EVENTS, len(drop_line(first, n, self.sfreq)))):
                pos[f] += size
            return at
        at = pos.get(name, 0)
        if name in pos:
            pos[name] += len(payload)
        return at

    def _put(self, name: str, payload: bytes) -> None:
        self._bytes_in += len(payload) + ITEM_OVERHEAD_BYTES
        at = self._advance(name, payload)
        if self._spilling or self._bytes_in - self._bytes_out > MEMORY_CAP_BYTES:
            with self._mode_lock:  # (the writer may have just caught up and switched back)
                if not self._spilling and self._bytes_in - self._bytes_out > MEMORY_CAP_BYTES:
                    self._spilling = True
                    log.warning("recording: %.1f MB wait for the disk; spilling to %s", MEMORY_CAP_BYTES / 1e6,
                                self.folder / SPILL)
                    self._start_spill()
                if self._spilling:
                    self._overflow.append((name, payload, at, self.samples_queued))
                else:
                    self._mem.append((name, payload))
        else:
            self._mem.append((name, payload))
        self._wake.set()

    def _check_behind(self) -> None:
        """Behind = the oldest chunk not yet on disk was queued more than ``BEHIND_S`` ago (wall
        clock: a file read faster than real time queues much of the session at once, harmlessly)."""
        self.max_queued_bytes = max(self.max_queued_bytes, self._bytes_in - self._bytes_out)
        now = time.monotonic()
        stamps, written = self._queued_at, self.samples_written
        stamps.append((self.samples_queued, now))
        while stamps and stamps[0][0] <= written:
            stamps.popleft()
        behind_s = now - stamps[0][1] if stamps else 0.0
        if not self._behind and behind_s > BEHIND_S:
            self._behind = True
            self.behind_events += 1
            log.warning("recording: the disk has fallen behind (%.1f s; %.1f MB wait in memory); nothing is lost, "
                        "the session goes on", behind_s, (self._bytes_in - self._bytes_out) / 1e6)
            self._put_event(f"recording_behind/{behind_s:.1f} s")
        elif self._behind and behind_s < BEHIND_S / 4:
            self._behind = False
            log.warning("recording: the disk has caught up")
            self._put_event("recording_caught_up")

    def _put_event(self, text: str, duration_s: float = 0.0, sample: int | None = None) -> None:
        s = self.samples_queued if sample is None else sample
        self._put(RECORDER_EVENTS, (json.dumps({"sample": s, "onset_s": s / self.sfreq, "duration_s": duration_s,
                                       "text": text}) + "\n").encode())

    def on_chunk(self, chunk) -> None:
        if self.error is not None:
            raise RecordingError(f"Recording to {self.folder} failed: {self.error}; the session was stopped, "
                                 f"everything up to the failure is kept (neurofeed recover {self.folder}).")
        n = chunk.n_samples
        first = self.samples_queued
        try:  # every payload built before any is queued: a chunk is journaled whole or as a counted gap
            items = [(SAMPLES, np.ascontiguousarray(chunk.data.T).tobytes())]
            ts = chunk.timestamps
            ts = np.full(n, np.nan) if ts is None or len(ts) != n else np.asarray(ts, dtype=np.float64)
            items += [(TIMESTAMPS, ts.tobytes()), (CHUNKS, np.int64(n).tobytes())]
            gap = getattr(chunk, "gap", None)  # True on the NaN columns standing for dropped packets
            if gap is not None and np.any(gap):
                items.append((GAPS, true_runs(gap, first).tobytes()))
            if first == 0:  # the BDF's start time: the wall-clock time of the first sample
                items.insert(0, (START, json.dumps({"first_sample": first_sample_time(chunk, self.sfreq)}).encode()))
        except MemoryError:  # the only loss: counted, written as gap samples, annotated
            self.dropped_samples += n
            items = [("drop", struct.pack("<qq", first, n))]
        for name, payload in items:
            self._put(name, payload)
        self.samples_queued += n
        self._check_behind()

    def on_state(self, st) -> None:
        self._put(FEEDBACK, state_to_row(st, self._fb_row, self._fields).tobytes())

    def on_events(self, events) -> None:
        text = "".join(json.dumps({"sample": e.sample, "onset_s": e.onset_s, "duration_s": e.duration_s,
                                   "text": e.text}) + "\n" for e in events)
        self._put(EVENTS, text.encode())

    # spill thread: overflow -> spill.bin ---------------------------------------------------
    def _start_spill(self) -> None:
        if self._spill_thread is None:
            self._spill_thread = threading.Thread(target=self._spiller, name="neurofeed-recorder-spill", daemon=True)
            self._spill_thread.start()

    def _spiller(self) -> None:
        try:
            with open(self.folder / SPILL, "xb") as f:
                while not (self._closing and not self._overflow and not self._spilling) and self.error is None:
                    if not self._overflow:
                        time.sleep(0.02)
                        continue
                    name, payload, at, sample = self._overflow[0]  # popped once written: the writer sees it somewhere
                    f.write(_FRAME.pack(_NAMES.index(name), at, sample, len(payload)) + payload)
                    f.flush()
                    self._spill_written += _FRAME.size + len(payload)
                    self._overflow.popleft()
        except OSError as err:
            self.error = err
            log.error("recording failed (spill file): %s", err)

    # writer thread ----------------------------------------------------------------------------
    def _sync(self) -> None:
        for f in self._files.values():
            f.flush()
            os.fsync(f.fileno())

    def _write(self, name: str, payload: bytes) -> None:
        if name == START:
            write_atomic(self.folder / START, payload)
        elif name == "drop":  # samples memory could not hold: the timeline keeps them as gap samples
            first, n = struct.unpack("<qq", payload)
            self._files[SAMPLES].write(np.full(n * self.n_ch, np.nan).tobytes())
            self._files[TIMESTAMPS].write(np.full(n, np.nan).tobytes())
            self._files[CHUNKS].write(np.int64(n).tobytes())
            self._files[GAPS].write(np.array([first, n], np.int64).tobytes())
            self._files[RECORDER_EVENTS].write(drop_line(first, n, self.sfreq))
            self.samples_written += n
        else:
            self._files[name].write(payload)
            if name == SAMPLES:
                self.samples_written += len(payload) // (8 * self.n_ch)
        self._bytes_out += len(payload) + ITEM_OVERHEAD_BYTES

    def _next_spilled(self, reader):
        """The next item of spill.bin, or None when the spill thread has not written one yet."""
        if self._spill_read >= self._spill_written:
            return None
        head = reader.read(_FRAME.size)
        kind, _, _, length = _FRAME.unpack(head)
        payload = reader.read(length)
        self._spill_read += _FRAME.size + length
        return _NAMES[kind], payload

    def _writer(self) -> None:
        last_sync = time.monotonic()
        reader = None
        try:
            while True:
                item = None
                if self._mem:
                    item = self._mem.popleft()
                elif self._spilling:
                    if reader is None and (self.folder / SPILL).exists():
                        reader = open(self.folder / SPILL, "rb")
                    item = self._next_spilled(reader) if reader is not None else None
                    if item is None and not self._overflow and self._spill_read >= self._spill_written:
                        with self._mode_lock:  # caught up: the producer goes back to memory
                            if not self._overflow and self._spill_read >= self._spill_written:
                                self._spilling = False
                        continue
                elif self._closing:
                    self._sync()
                    return
                if item is not None:
                    self._write(item[0], item[1])
                else:
                    self._wake.wait(0.1)
                    self._wake.clear()
                if time.monotonic() - last_sync >= SYNC_EVERY_S:
                    self._sync()
                    last_sync = time.monotonic()
        except OSError as err:
            self.error = err
            log.error("recording failed: %s", err)
        finally:
            if reader is not None:
                reader.close()

    def _trim_to_bdf(self) -> int:
        """Make the journal end where the BDF can end exactly (see ``bdf.bdf_samples``): nothing
        at 125/200/250/500/1000 Hz; at 256 Hz, where a BDF data record is a multiple of 4 samples,
        the journal is ended at its last chunk boundary that is (usually the last chunk itself; a
        Muse sends 12). Whole chunks only, so that a replay of the journal stays bit-exact.
        Returns the number of samples cut."""
        from .bdf import MAX_TRIM_S, record_samples

        n = (self.folder / SAMPLES).stat().st_size // (8 * self.n_ch)
        n_signals = self.n_ch + sum(c not in NOT_STREAMED for c in self.header["feedback_columns"])
        if n == 0 or record_samples(n, self.sfreq, n_signals) is not None:
            return 0
        ends = np.cumsum(np.fromfile(self.folder / CHUNKS, dtype=np.int64))
        for b in ends[(ends < n) & (ends >= n - MAX_TRIM_S * self.sfreq)][::-1]:
            spr = record_samples(int(b), self.sfreq, n_signals)
            if spr is not None:
                trim_journal(self.folder, int(b), f"recording_trimmed/{n - int(b)} samples (the BDF ends on a "
                                                  f"whole {spr}-sample record)")
                return n - int(b)
        return 0  # no chunk boundary serves: the BDF leaves the last samples out, annotated

    def close(self, summary: dict | None = None, finalize: bool = True) -> Path | None:
        """Drain the queue (all of it: nothing queued is left behind), fsync, write the sidecar and
        (by default) the BDF+ file."""
        if self._closed:
            return None
        self._closed = True
        self._closing = True
        self._wake.set()
        self._thread.join(5.0)
        if self._thread.is_alive():
            log.warning("recording: waiting for the disk to take the last %.1f MB of the session",
                        self.queued_bytes / 1e6)
            self._thread.join()
        if self._spill_thread is not None:
            self._spill_thread.join()
            if self.error is None:
                try:
                    (self.folder / SPILL).unlink()
                except OSError:
                    pass
        for f in self._files.values():
            try:
                f.close()
            except OSError:
                pass
        trimmed = self._trim_to_bdf() if finalize and self.error is None else 0
        if summary is not None:
            summary.update(recording_dropped_samples=self.dropped_samples,  # the caller's summary too
                           recording_trimmed_samples=trimmed,
                           recording_behind_events=self.behind_events,
                           recording_max_queued_mb=round(self.max_queued_bytes / 1e6, 3))
            write_atomic(self.folder / SIDECAR, json.dumps(dict(self.header, **summary), indent=1,
                                                           default=str).encode())
        if self.error is not None:
            log.error("recording incomplete: %s; run `neurofeed recover %s`", self.error, self.folder)
        if finalize:
            from .bdf import write_bdf

            return write_bdf(self.folder)
        return None


def drop_line(first: int, n: int, sfreq: float) -> bytes:
    """The ``recorder.jsonl`` line of ``n`` samples memory could not hold, from sample ``first``."""
    return (json.dumps({"sample": first, "onset_s": first / sfreq, "duration_s": n / sfreq,
                        "text": f"recording_dropped/{n}"}) + "\n").encode()


def _event_line(sample: int, sfreq: float, duration_s: float, text: str) -> bytes:
    return (json.dumps({"sample": sample, "onset_s": sample / sfreq, "duration_s": duration_s, "text": text})
            + "\n").encode()


def _aligned_size(path: Path, width: int | None) -> int:
    """The size of the whole records of a journal file (whole lines for ``width`` None: the
    events files, small), cutting off what a crash left half-written."""
    if not path.exists():
        return 0
    size = path.stat().st_size
    keep = size - size % width if width else path.read_bytes().rfind(b"\n") + 1
    if keep < size:
        os.truncate(path, keep)
    return keep


def restore_spill(folder) -> int:
    """Put what a killed session left in ``spill.bin`` (the queue past its memory cap, waiting
    for a disk that fell behind) into the journal files, every byte at its place; returns the
    number of samples restored. Run by ``recover`` before the BDF is written.

    Each spilled item carries its byte offset in its journal file: parts the writer had already
    written are skipped, the rest appended. Items lost with the process's memory (queued before
    the spill, not yet written) leave a hole; a hole in the samples is written as gap samples
    (NaN, a gap run) and journaled ``recording_lost/<n>``, so every spilled sample keeps its
    place on the timeline. ``spill.bin`` is removed once the journal is fsynced.
    """
    folder = Path(folder)
    spill = folder / SPILL
    if not spill.exists():
        return 0
    header = json.loads((folder / HEADER).read_text())
    n_ch, sfreq = len(header["ch_names"]), float(header["sfreq"])
    widths = {SAMPLES: 8 * n_ch, TIMESTAMPS: 8, CHUNKS: 8, GAPS: 16, FEEDBACK: 8 * len(header["feedback_columns"]),
              EVENTS: None, RECORDER_EVENTS: None}
    have = {name: _aligned_size(folder / name, w) for name, w in widths.items()}
    chunked = int(np.fromfile(folder / CHUNKS, dtype=np.int64).sum()) if have[CHUNKS] else 0
    restored = 0
    files = {name: open(folder / name, "ab") for name in widths}
    try:
        with open(spill, "rb") as f:
            while True:
                head = f.read(_FRAME.size)
                if len(head) < _FRAME.size:
                    break
                kind, at, sample, length = _FRAME.unpack(head)
                payload = f.read(length)
                if len(payload) < length or kind >= len(_NAMES):
                    break  # the frame the crash cut
                name = _NAMES[kind]
                if name == START:
                    if not (folder / START).exists():
                        write_atomic(folder / START, payload)
                    continue
                if name == "drop":
                    continue  # its samples fall in a hole below: gap samples, journaled
                if at + length <= have[name]:
                    continue  # on disk already
                if at > have[name]:  # lost in memory with the process
                    hole = at - have[name]
                    if name == SAMPLES:
                        k, first = hole // widths[SAMPLES], have[SAMPLES] // widths[SAMPLES]
                        files[SAMPLES].write(np.full(k * n_ch, np.nan).tobytes())
                        files[GAPS].write(np.array([first, k], np.int64).tobytes())
                        files[RECORDER_EVENTS].write(_event_line(first, sfreq, k / sfreq, f"recording_lost/{k}"))
                    elif name == TIMESTAMPS:
                        files[TIMESTAMPS].write(np.full(hole // 8, np.nan).tobytes())
                    elif name == CHUNKS and sample > chunked:
                        files[CHUNKS].write(np.int64(sample - chunked).tobytes())
                        chunked = sample
                    have[name] = at
                part = payload[have[name] - at:]
                files[name].write(part)
                have[name] = at + length
                if name == SAMPLES:
                    restored += len(part) // widths[SAMPLES]
                elif name == CHUNKS:
                    chunked += int(np.frombuffer(part, np.int64).sum())
    finally:
        for fh in files.values():
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
    fsync_folder(folder)
    spill.unlink()
    return restored


def trim_journal(folder, n_keep: int, note: str) -> None:
    """End a closed journal at sample ``n_keep`` (a chunk boundary): samples, timestamps, chunk
    sizes and gap runs cut, feedback updates after it dropped, events after it moved to it; and
    ``note`` journaled in ``recorder.jsonl`` there."""
    folder = Path(folder)
    header = json.loads((folder / HEADER).read_text())
    n_ch, sfreq = len(header["ch_names"]), float(header["sfreq"])
    for name, width in ((SAMPLES, 8 * n_ch), (TIMESTAMPS, 8)):
        if (folder / name).stat().st_size > n_keep * width:
            os.truncate(folder / name, n_keep * width)
    chunks = np.fromfile(folder / CHUNKS, dtype=np.int64)
    start = np.concatenate(([0], np.cumsum(chunks)[:-1]))
    kept = np.minimum(chunks, np.maximum(0, n_keep - start))
    write_atomic(folder / CHUNKS, kept[kept > 0].tobytes())
    gaps = np.fromfile(folder / GAPS, dtype=np.int64)
    gaps = gaps[: gaps.size // 2 * 2].reshape(-1, 2)
    gaps = np.column_stack([gaps[:, 0], np.minimum(gaps[:, 1], n_keep - gaps[:, 0])])
    write_atomic(folder / GAPS, gaps[gaps[:, 1] > 0].astype(np.int64).tobytes())
    n_cols = len(header["feedback_columns"])
    fb = np.fromfile(folder / FEEDBACK, dtype=np.float64)
    fb = fb[: fb.size // n_cols * n_cols].reshape(-1, n_cols)
    write_atomic(folder / FEEDBACK, fb[fb[:, 0] <= n_keep].tobytes())  # (column 0: sample_index)
    lines = []
    for line in (folder / EVENTS).read_text().splitlines():
        e = json.loads(line)
        if e["sample"] > n_keep:
            e.update(sample=n_keep, onset_s=n_keep / sfreq)
        lines.append(json.dumps(e) + "\n")
    write_atomic(folder / EVENTS, "".join(lines).encode())
    with open(folder / RECORDER_EVENTS, "ab") as f:
        f.write(_event_line(n_keep, sfreq, 0.0, note))
        f.flush()
        os.fsync(f.fileno())


def first_sample_time(chunk, sfreq: float) -> str:
    """The wall-clock time (ISO, µs) of a chunk's first sample: its arrival, less the newest
    sample's age where the source tells it, less the chunk's length."""
    age = chunk.age_s if chunk.age_s == chunk.age_s else 0.0
    waited_s = (time.perf_counter_ns() - chunk.arrival_ns) / 1e9 if chunk.arrival_ns else 0.0
    t = time.time() - waited_s - age - (chunk.n_samples - 1) / sfreq
    return dt.datetime.fromtimestamp(t).isoformat(timespec="microseconds")


def recover(path) -> Path:
    """Turn what a killed session left into a valid BDF+ (loses at most the unsynced last second):
    the journal, and the spill file of a disk that had fallen behind (:func:`restore_spill`).

    Raises :class:`RecordingError` (one line) when nothing can be recovered, never anything else.
    """
    from .bdf import write_bdf

    try:
        folder = Path(path) if Path(path).is_dir() else Path(path).parent
        if (folder / HEADER).exists():
            restore_spill(folder)  # the queue the disk had not taken yet, in its place
        return write_bdf(path, recovered=True)
    except RecordingError:
        raise
    except Exception as err:  # noqa: BLE001 - a damaged journal must end in one clear line
        raise RecordingError(f"{path}: cannot recover the session: {type(err).__name__}: {err}.") from None
