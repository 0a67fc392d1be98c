"""An OpenBCI Cyton (and Cyton + Daisy) on a pseudo-terminal, for BrainFlow's own serial driver.

The emulator answers the Cyton's serial handshake the way BrainFlow's ``OpenBCISerialBoard``
expects it (``v`` -> text ending in ``$$$``; ``d`` -> a reply, ``b`` starts, ``s`` stops; channel
and lead-off settings ``x...X`` / ``z...Z`` are acknowledged) and streams 33-byte packets paced
by the host clock::

    0xA0 | sample number | 8 x int24 big-endian (ADS1299 counts) | 3 x int16 (accel) | 0xC0

at 250 Hz (``speed`` > 1 compresses time: a pty has no baud limit). BrainFlow converts counts
to µV with gain 24: ``4.5 V / 24 / (2**23 - 1)`` per count (:data:`UV_PER_COUNT`). With
``daisy=True`` every sample is two packets, the Daisy's channels 9-16 under an even sample
number and then the Cyton's 1-8 under the next (odd) one, 16 channels at 125 Hz; BrainFlow
(5.x, ``cyton_daisy.cpp``) merges the pair and keeps the even number, so its package counter
steps by 2.

What the emulator sends is logged per sample (host write time on both clocks and the exact
µV BrainFlow will decode), so tests and the latency benchmark can compare what came out of
the driver with what went in, and time electrode -> feedback from the moment a sample was
written.
"""

from __future__ import annotations

import fcntl
import logging
import os
import select
import struct
import termios
import threading
import time
import tty
from typing import Callable

import numpy as np

from ..core.errors import NeurofeedError, SourceError
from .emulator_base import ThreadedEmulator

log = logging.getLogger(__name__)

UV_PER_COUNT = 4.5 / 24 / (2 ** 23 - 1) * 1e6
"""µV per ADS1299 count at gain 24 (BrainFlow's ``eeg_scale`` for the Cyton)."""
COUNT_MAX = 2 ** 23 - 1
COUNT_MIN = -(2 ** 23)
RAIL_UV = COUNT_MAX * UV_PER_COUNT
"""The positive rail (µV): 187500 µV at gain 24."""

START_BYTE = 0xA0
END_BYTE = 0xC0

_VERSION_TEXT = ("OpenBCI V3 8-16 channel\nOn Board ADS1299 Device ID: 0x3E\n{daisy}"
                 "LIS3DH Device ID: 0x33\nFirmware: v3.1.2\n$$$")


def uv_to_counts(uv: np.ndarray) -> np.ndarray:
    """µV -> ADS1299 counts at gain 24, rounded and clipped to the 24-bit range (the rails).

    Non-finite values become 0 counts (a real amplifier cannot send NaN).
    """
    x = np.where(np.isfinite(uv), uv, 0.0) / UV_PER_COUNT
    return np.clip(np.rint(x), COUNT_MIN, COUNT_MAX).astype(np.int32)


def encode_packet(sample_number: int, counts: np.ndarray, accel=(0, 0, 0), end_byte: int = END_BYTE) -> bytes:
    """One 33-byte Cyton packet.

    Parameters
    ----------
    sample_number : int
        0-255.
    counts : ndarray, shape (8,), int
        ADS1299 counts, within ``COUNT_MIN .. COUNT_MAX``.
    accel : 3 ints
        Raw int16 accelerometer values (the aux bytes of an 0xC0 packet).

    Returns
    -------
    bytes, length 33
    """
    c = np.asarray(counts, dtype=np.int64) & 0xFFFFFF
    body = bytearray(33)
    body[0] = START_BYTE
    body[1] = sample_number & 0xFF
    for i in range(8):
        v = int(c[i])
        body[2 + 3 * i: 5 + 3 * i] = bytes(((v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF))
    body[26:32] = struct.pack(">hhh", *accel)
    body[32] = end_byte
    return bytes(body)


def edf_signal(path, ch_names, sfreq: float) -> np.ndarray:
    """EEG from an EDF/BDF file, the channels named (10-10, any order), resampled to ``sfreq``.

    Returns
    -------
    ndarray, shape (len(ch_names), n_samples), µV
    """
    from ..hardware.sources.edf import read_raw

    raw = read_raw(path)
    missing = [c for c in ch_names if c not in raw.ch_names]
    if missing:
        raise SourceError(f"{path}: no channel {', '.join(missing)} for the emulated montage "
                          f"({' '.join(ch_names)}); the file has {', '.join(raw.ch_names[:12])}"
                          f"{' ...' if len(raw.ch_names) > 12 else ''}: use another --montage or a file with "
                          f"those 10-10 channels (e.g. EEGMMIDB).")
    raw.pick(list(ch_names))
    if raw.info["sfreq"] != sfreq:
        raw.resample(sfreq, verbose="error")  # MNE's anti-aliased resampling
    return np.ascontiguousarray(raw.get_data() * 1e6)


# The Cyton's lead-off (frequency, current, series resistor, channel keys) is defined once, with
# the signal check that drives it.
from ..hardware.signal_check import CYTON_CHANNEL_KEYS as CHANNEL_KEYS  # noqa: E402
from ..hardware.signal_check import LEADOFF_CURRENT_A, LEADOFF_HZ, LEADOFF_SERIES_OHM  # noqa: E402,F401


class CytonEmulator(ThreadedEmulator):
    """A Cyton (or Cyton + Daisy) on a pseudo-terminal, read by BrainFlow's own driver.

    Parameters
    ----------
    signal : ndarray, shape (n_channels, n) or callable
        The EEG to send, in µV at the board's rate (250 Hz, or 125 Hz with ``daisy``):
        an array (looped when ``loop``) or ``signal(first_index, n) -> ndarray (n_channels, n)``
        called with the sample index of the first of ``n`` samples (so a scripted envelope
        is known per sample). ``n_channels`` is 8 (16 with ``daisy``).
    speed : float
        Time compression: packets go out ``speed`` times faster than real time (> 0).
    offsets_uv : float or array of n_channels, optional
        DC electrode offsets added to every sample (µV). A scalar ``x`` gives the channels
        ``+x, -x, +x, ...`` (the ADS1299 is DC-coupled: tens of mV are normal).
    drift_uv_per_s : float or array of n_channels, optional
        Linear drift of the offsets (µV per second of signal time), signs as for ``offsets_uv``.
    drop_packets : iterable of int
        Sample indices never written (their sample numbers are skipped, as when the radio
        loses packets). With ``daisy`` both packets of the sample are skipped.
    drop_every : int, optional
        Also drop every ``drop_every``-th sample (indices ``drop_every - 1, 2 * drop_every - 1, ...``).
    railed_channel : int, optional
        This channel (0-based) sits at the positive rail (``COUNT_MAX``: +187500 µV).
    impedance_kohm : float or array of n_channels
        Electrode impedance. While lead-off is on for a channel (``z<ch>10Z``, as BrainFlow's
        ``config_board`` sends it), the channel carries the 31.25-Hz lead-off voltage
        ``(Z + 2.2 kΩ) · 6 nA`` (peak), which the OpenBCI GUI turns back into Z.
    daisy : bool
        Emulate a Cyton + Daisy (16 channels, 125 Hz, two packets per sample).
    loop : bool
        Start the array over when it ends (otherwise stop streaming at its end).
    log_samples : int
        How many recent samples the send log keeps (values and write times).

    Attributes
    ----------
    port : str
        The pseudo-terminal to give BrainFlow as ``serial_port`` (valid after construction).
    sfreq : float
        250.0 (Cyton) or 125.0 (Daisy).
    n_channels : int
    sent_samples : int
        Samples written so far (dropped ones not counted).
    clocked_samples : int
        Sample indices consumed so far (written + dropped); the next sample's index.
    dropped_samples : int
        Samples skipped on purpose.
    streaming : threading.Event
        Set while the board streams (between ``b`` and ``s``).
    commands : list of str
        Every command character received, in order (for tests of the handshake).

    Examples
    --------
    >>> with CytonEmulator(signal, speed=4) as emu:            # doctest: +SKIP
    ...     params.serial_port = emu.port
    ...     board = BoardShim(BoardIds.CYTON_BOARD, params)
    """

    thread_name = "cyton-emulator"

    def __init__(self, signal, speed: float = 1.0, offsets_uv=None, drift_uv_per_s=None, drop_packets=(),
                 drop_every: int | None = None, railed_channel: int | None = None, impedance_kohm=5.0,
                 daisy: bool = False, loop: bool = True, log_samples: int = 250 * 600):
        self.daisy = bool(daisy)
        self.n_channels = 16 if self.daisy else 8
        self.sfreq = 125.0 if self.daisy else 250.0
        self.packets_per_sample = 2 if self.daisy else 1
        if not speed > 0:
            raise ValueError(f"speed must be > 0, not {speed!r}.")
        self.speed = float(speed)
        if callable(signal):
            self._fn: Callable | None = signal
            self._array = None
        else:
            arr = np.asarray(signal, dtype=np.float64)
            if arr.ndim != 2 or arr.shape[0] != self.n_channels or arr.shape[1] == 0:
                raise ValueError(f"signal must have shape ({self.n_channels}, n > 0) for "
                                 f"{'a Cyton + Daisy' if daisy else 'a Cyton'}, not {arr.shape}.")
            self._fn, self._array = None, arr
        self.loop = loop
        self.offsets_uv = self._per_channel(offsets_uv, "offsets_uv")
        self.drift_uv_per_s = self._per_channel(drift_uv_per_s, "drift_uv_per_s")
        self.drop = {int(k) for k in drop_packets}
        if drop_every is not None and int(drop_every) < 2:
            raise ValueError(f"drop_every must be >= 2, not {drop_every!r}.")
        self.drop_every = int(drop_every) if drop_every else None
        if railed_channel is not None and not 0 <= int(railed_channel) < self.n_channels:
            raise ValueError(f"railed_channel must be 0..{self.n_channels - 1}, not {railed_channel!r}.")
        self.railed_channel = None if railed_channel is None else int(railed_channel)
        self.impedance_kohm = np.broadcast_to(np.asarray(impedance_kohm, dtype=np.float64), (self.n_channels,)).copy()
        self.leadoff = np.zeros(self.n_channels, dtype=bool)  # lead-off current on, per channel
        # the send log, a ring indexed by sample index
        self.log_samples = int(log_samples)
        self._log_counts = np.zeros((self.log_samples, self.n_channels), dtype=np.int32)
        self._log_ns = np.full(self.log_samples, -1, dtype=np.int64)
        self._log_wall = np.full(self.log_samples, np.nan)
        self._log_index = np.full(self.log_samples, -1, dtype=np.int64)
        self.sent_samples = 0
        self.clocked_samples = 0
        self.dropped_samples = 0
        self.commands: list[str] = []
        self.streaming = threading.Event()
        self._cond = threading.Condition()
        self._init_thread()
        self._exhausted = False
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no CR/LF translation: bytes pass as they are
        os.set_blocking(self.master, False)
        self.port = os.ttyname(self._slave)

    def _per_channel(self, value, what) -> np.ndarray:
        if value is None:
            return np.zeros(self.n_channels)
        v = np.asarray(value, dtype=np.float64)
        if v.ndim == 0:
            return float(v) * np.where(np.arange(self.n_channels) % 2 == 0, 1.0, -1.0)
        if v.shape != (self.n_channels,):
            raise ValueError(f"{what} must be a scalar or {self.n_channels} values, not shape {v.shape}.")
        return v.copy()

    # ------------------------------------------------------------------ lifecycle (start/stop: ThreadedEmulator)
    def _close(self) -> None:
        """Close the pty (after the thread stopped)."""
        for fd in (self.master, self._slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.master = self._slave = None

    # ------------------------------------------------------------------ what was sent
    def sent_uv(self, first: int, n: int) -> np.ndarray:
        """What BrainFlow decodes for samples ``first .. first + n - 1`` (µV, exact), NaN where dropped.

        Returns
        -------
        ndarray, shape (n_channels, n), µV
        """
        idx = np.arange(first, first + n)
        slot = idx % self.log_samples
        ok = self._log_index[slot] == idx
        if not (idx < self.clocked_samples).all() or (idx < self.clocked_samples - self.log_samples).any():
            raise ValueError(f"samples {first}..{first + n - 1} are not in the send log "
                             f"(clocked {self.clocked_samples}, log keeps {self.log_samples}).")
        out = self._log_counts[slot].T * UV_PER_COUNT
        out[:, ~ok] = np.nan
        return out

    def write_times_ns(self, first: int, n: int) -> np.ndarray:
        """Host ``time.perf_counter_ns()`` just before each sample was written to the pty (-1 where dropped).

        Samples written in one batch (the emulator catching up, or ``speed`` > 1) share a time.
        """
        idx = np.arange(first, first + n)
        slot = idx % self.log_samples
        return np.where(self._log_index[slot] == idx, self._log_ns[slot], -1)

    def write_times_wall(self, first: int, n: int) -> np.ndarray:
        """The same on ``time.time()`` (BrainFlow's timestamp clock), NaN where dropped."""
        idx = np.arange(first, first + n)
        slot = idx % self.log_samples
        return np.where(self._log_index[slot] == idx, self._log_wall[slot], np.nan)

    def is_dropped(self, k: int) -> bool:
        """True if sample index ``k`` is skipped on purpose."""
        return k in self.drop or (self.drop_every is not None and (k + 1) % self.drop_every == 0)

    # ------------------------------------------------------------------ the board
    def _signal(self, k0: int, n: int) -> np.ndarray:
        if self._fn is not None:
            x = np.asarray(self._fn(k0, n), dtype=np.float64)
            if x.shape != (self.n_channels, n):
                raise ValueError(f"the signal callable returned shape {x.shape}, expected {(self.n_channels, n)}.")
        else:
            total = self._array.shape[1]
            idx = np.arange(k0, k0 + n)
            if not self.loop:
                idx = np.minimum(idx, total - 1)
            x = self._array[:, idx % total]
        t = (k0 + np.arange(n)) / self.sfreq
        x = x + self.offsets_uv[:, None] + self.drift_uv_per_s[:, None] * t
        if self.leadoff.any():
            peak_uv = (self.impedance_kohm[self.leadoff] * 1e3 + LEADOFF_SERIES_OHM) * LEADOFF_CURRENT_A * 1e6
            x[self.leadoff] += peak_uv[:, None] * np.sin(2 * np.pi * LEADOFF_HZ * t)
        if self.railed_channel is not None:
            x[self.railed_channel] = RAIL_UV
        return x

    def _reply(self, text: str) -> None:
        data = text.encode("ascii")
        while data and not self._stop.is_set():
            try:
                data = data[os.write(self.master, data):]
            except BlockingIOError:
                time.sleep(0.001)

    def _handle(self, data: bytes) -> None:
        for ch in data.decode("latin-1"):
            self.commands.append(ch)
            if self._setting:  # inside x...X or z...Z
                self._setting += ch
                if ch in "XZ":
                    what = "Channel set" if ch == "X" else "Lead off set"
                    key = self._setting[1:2]
                    if ch == "Z" and len(self._setting) == 5 and key in CHANNEL_KEYS[: self.n_channels]:
                        self.leadoff[CHANNEL_KEYS.index(key)] = "1" in self._setting[2:4]
                    if not self.streaming.is_set():
                        self._reply(f"Success: {what} for {self._setting[1]}$$$")
                    self._setting = ""
                continue
            if ch == "v":
                self.streaming.clear()
                self._reply(_VERSION_TEXT.format(daisy="On Daisy ADS1299 Device ID: 0x3E\n" if self.daisy else ""))
            elif ch == "d":
                if not self.streaming.is_set():
                    self._reply("updating channel settings to default$$$")
            elif ch == "b":
                self._start_k = self.clocked_samples
                self._t0 = time.perf_counter()
                self._packets_done = 0
                self.streaming.set()
            elif ch == "s":
                self.streaming.clear()
            elif ch in "xz":
                self._setting = ch
            elif ch in "cC":
                if not self.streaming.is_set():
                    self._reply("daisy removed$$$" if ch == "c" else ("16$$$" if self.daisy else "no daisy to attach!$$$"))
            elif ch == "?":
                if not self.streaming.is_set():
                    self._reply("Board ADS Registers\n$$$")
            # other characters (channel on/off 1-8 q-i, test signals, SD commands) are accepted silently

    def _inq(self) -> int:
        """Bytes written but not yet read by the driver."""
        return struct.unpack("i", fcntl.ioctl(self._slave, termios.FIONREAD, b"\0\0\0\0"))[0]

    def _emit_due(self) -> None:
        """Write every packet whose time has come (whole packets only, never more than the
        driver has room for: BrainFlow reads with VMIN=0, so a half-written packet would be lost)."""
        rate = self.sfreq * self.packets_per_sample * self.speed  # packets per second
        due = int((time.perf_counter() - self._t0) * rate) + 1
        pps = self.packets_per_sample
        due_samples = -(-(due - self._packets_done) // pps)  # ceil: a Daisy sample is two packets
        room_samples = max(0, (2048 - self._inq()) // 33) // pps
        n_samples = min(due_samples, room_samples, 32)
        self._blocked = due_samples > 0 and room_samples == 0
        if n_samples <= 0:
            return
        k0 = self.clocked_samples
        counts = uv_to_counts(self._signal(k0, n_samples))
        buf = bytearray()
        written = []
        for j in range(n_samples):
            k = k0 + j
            if self._array is not None and not self.loop and k >= self._array.shape[1]:
                self._exhausted = True
                self.streaming.clear()
                break
            written.append(k)
            if self.is_dropped(k):
                continue
            if self.daisy:
                # BrainFlow (5.x): the even number carries the Daisy's channels and comes first,
                # the odd one the Cyton's and commits the merged sample under the even number
                buf += encode_packet(2 * k, counts[8:, j])
                buf += encode_packet(2 * k + 1, counts[:8, j])
            else:
                buf += encode_packet(k, counts[:, j])
        # the "electrode" time of these samples: just before they become readable; the log is
        # filled first so that a reader never sees a sample the log does not hold yet
        t_ns, t_wall = time.perf_counter_ns(), time.time()
        for j, k in enumerate(written):
            slot = k % self.log_samples
            self._log_counts[slot] = counts[:, j]
            self._log_ns[slot], self._log_wall[slot] = t_ns, t_wall
            self._log_index[slot] = -1 if self.is_dropped(k) else k
        n_drop = sum(self.is_dropped(k) for k in written)
        with self._cond:
            self.clocked_samples += len(written)
            self.dropped_samples += n_drop
            self.sent_samples += len(written) - n_drop
        self._packets_done += len(written) * self.packets_per_sample
        view = memoryview(bytes(buf))
        while view and not self._stop.is_set():
            try:
                view = view[os.write(self.master, view):]
            except BlockingIOError:
                time.sleep(0.0005)
        with self._cond:
            self._cond.notify_all()

    def _run(self) -> None:
        self._setting = ""
        self._blocked = False
        try:
            while not self._stop.is_set():
                timeout = 0.05
                if self.streaming.is_set():
                    rate = self.sfreq * self.packets_per_sample * self.speed
                    next_due = self._t0 + self._packets_done / rate
                    timeout = min(0.05, max(0.0, next_due - time.perf_counter()))
                    if self._blocked:  # the driver is behind: let it read instead of spinning
                        timeout = 0.001
                ready, _, _ = select.select([self.master], [], [], timeout)
                if ready:
                    try:
                        data = os.read(self.master, 1024)
                    except (BlockingIOError, InterruptedError):
                        data = b""
                    if data:
                        self._handle(data)
                if self.streaming.is_set():
                    self._emit_due()
        except Exception:  # noqa: BLE001 - a test fixture thread must say why it died
            log.exception("cyton emulator stopped")
            with self._cond:
                self._exhausted = True
                self._cond.notify_all()


def montage_names(board: str, montage: str = "default") -> list[str]:
    """The 10-10 names the emulator puts on ``board`` ("cyton" or "cyton-daisy") for ``montage``:
    the board config's montage (``neurofeed montages``), so the emulated electrodes sit where a
    session with ``--montage`` expects them."""
    from ..hardware.boards import get_board

    try:
        return list(get_board(board).montage(montage))
    except NeurofeedError as err:
        raise SourceError(str(err)) from None


def from_edf(path, board: str = "cyton", montage: str = "default", **kwargs) -> CytonEmulator:
    """A :class:`CytonEmulator` sending the channels of ``montage`` from an EDF file (resampled)."""
    daisy = board == "cyton-daisy"
    names = montage_names(board, montage)
    x = edf_signal(path, names, 125.0 if daisy else 250.0)
    return CytonEmulator(x, daisy=daisy, **kwargs)
