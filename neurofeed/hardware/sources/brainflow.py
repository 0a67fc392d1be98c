"""BrainFlow boards (OpenBCI, Muse, synthetic, playback file) as a chunk source."""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...core.channels import normalize_names
from ...core.chunk import Chunk, insert_gaps
from ...core.errors import SourceError
from ..boards import BoardConfig, board_shim, resolve_board_id
from .base import Source, rename_channels

log = logging.getLogger(__name__)


SYSFS_USB_SERIAL = "/sys/bus/usb-serial/devices"


def ftdi_latency_ms(serial_port: str, sysfs: str = SYSFS_USB_SERIAL) -> int | None:
    """The FTDI USB-serial latency timer (ms) for ``serial_port`` on Linux, or None if unknown."""
    if not sys.platform.startswith("linux") or not serial_port:
        return None
    dev = Path(os.path.realpath(serial_port)).name
    timer = Path(sysfs) / dev / "latency_timer"
    try:
        return int(timer.read_text().strip())
    except (OSError, ValueError):
        return None


def ftdi_warning(serial_port: str, sysfs: str = SYSFS_USB_SERIAL) -> str | None:
    """A one-line warning with the fix if the FTDI latency timer delays packets (> 1 ms)."""
    ms = ftdi_latency_ms(serial_port, sysfs)
    if ms is not None and ms > 1:
        dev = Path(os.path.realpath(serial_port)).name
        return (f"FTDI latency timer on {serial_port} is {ms} ms (every packet waits up to that long); fix: "
                f"echo 1 | sudo tee {sysfs}/{dev}/latency_timer")
    return None


@dataclass(frozen=True)
class CounterRule:
    """How a board numbers its samples in BrainFlow's ``package_num`` row.

    Attributes
    ----------
    modulus : int
        The counter wraps at this value (a loss of ``modulus`` packages is invisible).
    step : int
        How far the counter advances from one package to the next.
    per_package : int
        Samples that share one counter value (one radio packet / BLE notification).
    """

    modulus: int
    step: int = 1
    per_package: int = 1


# How each board numbers its samples (package_num row), read from BrainFlow's drivers
# (src/board_controller/...):
# - Cyton (openbci/cyton.cpp): the sample number 0..255 of each packet, one sample per packet.
#   Checked end to end with neurofeed.devtools.cyton_emulator.
# - Cyton + Daisy (openbci/cyton_daisy.cpp): BrainFlow merges the packets n (even) and n + 1 into
#   one sample and keeps n: the counter steps by 2.
# - Muse 2 / Muse S / Muse 2016 (muse/muse.cpp, peripheral_on_eeg): each EEG notification carries
#   12 samples of one channel and a 16-bit sequence number (data[0] * 256 + data[1]); BrainFlow
#   pushes the 12 samples once every channel's notification of the round has come, all 12 with
#   that number. A lost notification round is a jump of 2: 12 samples lost.
# - Ganglion (openbci/ganglion.cpp, firmware 2; ganglion_native_v3.cpp, firmware 3): each BLE
#   packet carries two compressed samples and its packet id as package_num for both: 1..100
#   (18-bit) or 101..200 (19-bit) on firmware 2 (after one uncompressed id-0 packet at the start),
#   0..99 / 100..199 on firmware 3. Modulo 100 every one of these is a run of consecutive ids, so
#   a jump of k + 1 (mod 100) is k packets, 2k samples lost. (The impedance-mode ids 201..205
#   carry no EEG; neurofeed never switches the Ganglion to impedance mode.)
# Boards not listed here are not checked for gaps.
COUNTER_RULES = {
    "SYNTHETIC_BOARD": CounterRule(256),
    "CYTON_BOARD": CounterRule(256),
    "CYTON_DAISY_BOARD": CounterRule(256, step=2),
    "MUSE_2_BOARD": CounterRule(65536, per_package=12),
    "MUSE_S_BOARD": CounterRule(65536, per_package=12),
    "MUSE_2016_BOARD": CounterRule(65536, per_package=12),
    "GANGLION_BOARD": CounterRule(100, per_package=2),
    "GANGLION_NATIVE_BOARD": CounterRule(100, per_package=2),
}

AUX_ENABLE_COMMAND = "p50"
"""``config_board`` command that makes a Muse 2 / Muse S stream its AUX electrode."""


def missing_before(previous, counter: np.ndarray, modulus: int = 256, step: int = 1,
                   per_package: int = 1) -> np.ndarray:
    """Samples lost just before each sample, from a run of package counters.

    Parameters
    ----------
    previous : float or None
        The last counter of the previous chunk (None at the start).
    counter : ndarray, shape (n,)
        Package counters, wrapping at ``modulus``, advancing by ``step`` per package.
    modulus, step : int
    per_package : int
        Samples sharing one counter value (12 per Muse notification, 2 per Ganglion packet).

    Returns
    -------
    ndarray of int, shape (n,)
        0 where the counter stayed (the same package) or advanced by ``step``; ``k * per_package``
        where it jumped ``(k + 1) * step`` (k packages lost).
    """
    counter = np.asarray(counter, dtype=np.float64)
    if counter.size == 0:
        return np.zeros(0, dtype=np.int64)
    first = counter[:1] if previous is None else np.asarray([previous], dtype=np.float64)
    diff = np.mod(np.diff(np.concatenate((first, counter))).astype(np.int64), modulus)
    return np.maximum(diff // step - 1, 0) * per_package


def count_dropped(previous, counter: np.ndarray, modulus: int = 256, step: int = 1, per_package: int = 1) -> int:
    """Samples missing from a run of package counters (which wrap at ``modulus``).

    ``previous`` is the last counter of the previous chunk (None at the start). A step of
    ``step`` is normal; a larger step means packages were lost on the way (radio, USB, buffer),
    ``per_package`` samples each.
    """
    return int(missing_before(previous, counter, modulus, step, per_package).sum())


def aux_rows(board_id: int) -> dict:
    """``{"AUX": row}``: the BrainFlow data row of a Muse 2 / Muse S AUX electrode (its
    ``other_channels``), streamed after ``config_board("p50")``; ``{}`` for other boards."""
    bs = board_shim()
    BoardIds, BoardShim = bs.BoardIds, bs.BoardShim

    if board_id not in (BoardIds.MUSE_2_BOARD.value, BoardIds.MUSE_S_BOARD.value):
        return {}
    other = BoardShim.get_board_descr(board_id).get("other_channels", [])
    return {"AUX": int(other[0])} if other else {}


class BrainFlowSource(Source):
    """Acquire from a BrainFlow board.

    Channel rows, sampling rate and (where the board defines them) channel names come from
    ``BoardShim``; the config supplies names for boards without them, the amplifier range and
    the mains frequency (``line_hz``). Chunks carry BrainFlow's timestamp row. Samples lost
    on the way (gaps in the package counter, for the boards in :data:`COUNTER_RULES`) are
    handed over as gap samples: NaN columns with interpolated timestamps, marked in
    ``Chunk.gap``, counted in ``dropped_samples``; ``first_sample`` counts them.

    Parameters
    ----------
    config : BoardConfig
    serial_port, mac_address : str
        Passed to ``BrainFlowInputParams``.
    file : str
        Recording for the playback-file board.
    board_id : int or str, optional
        Overrides the config's board id (the ``--board-id`` escape hatch).
    channel_map : dict, optional
        Board channel name -> 10-10 name (e.g. ``{"AUX": "C3"}``), applied after
        ``channel_names``.
    channel_names : list of str, optional
        Names of the board's EEG rows in order (a montage: what sits under each electrode),
        instead of BrainFlow's or the config's defaults; one per EEG row.
    extra_rows : dict, optional
        More rows to read as EEG channels, name -> BrainFlow data row, appended after the
        EEG rows (e.g. a Muse's AUX electrode placed at C3: ``{"C3": 5}``).
    config_commands : sequence of str
        Sent with ``config_board`` after ``prepare_session`` and before streaming (e.g.
        ``["p50"]`` to enable the Muse AUX electrode).
    line_hz : float, optional
        Mains frequency (Hz) instead of the config's ``line_hz``.
    """

    def __init__(self, config: BoardConfig, serial_port="", mac_address="", file="", board_id=None,
                 channel_map=None, channel_names=None, extra_rows=None, config_commands=(), line_hz=None):
        bs = board_shim()
        BoardShim, BrainFlowInputParams = bs.BoardShim, bs.BrainFlowInputParams

        BoardShim.disable_board_logger()
        self.config = config
        self.board_id = resolve_board_id(board_id if board_id is not None else config.board_id)
        self.params = BrainFlowInputParams()
        self.params.serial_port = serial_port or ""
        self.params.mac_address = mac_address or ""
        # a hardware board's own BrainFlow recording (--file) is replayed through BrainFlow's
        # playback board with this board as its master: the same rows, package numbers and gaps
        self.replay = bool(file) and config.master_board is None and self.board_id not in (-3, -2) \
            and config.requires != "file"
        master = None
        if self.replay:
            master, self.board_id = self.board_id, resolve_board_id("PLAYBACK_FILE_BOARD")
        elif config.requires == "serial_port" and serial_port and not os.path.exists(serial_port):
            raise SourceError(f"Serial port {serial_port} does not exist; plug in the dongle and pass its "
                              f"device, e.g. --serial-port /dev/ttyUSB0.")
        elif config.requires == "serial_port" and not serial_port:
            hint = " (the BLED112 dongle; --mac-address picks one Ganglion; without a dongle use --board " \
                   "ganglion-native)" if config.name == "ganglion" else ""
            raise SourceError(f"Board {config.name} needs --serial-port (e.g. /dev/ttyUSB0){hint}.")
        self.data_board_id = self.board_id
        if config.master_board is not None or self.board_id in (-3, -2):
            if not file:
                raise SourceError(f"Board {config.name} needs --file (a BrainFlow CSV recording).")
            if not os.path.isfile(file):
                raise SourceError(f"Playback file {file} does not exist.")
            self.params.file = str(file)
            self.data_board_id = master if master is not None else \
                resolve_board_id(config.master_board or "SYNTHETIC_BOARD")
            self.params.master_board = self.data_board_id
        try:
            descr = BoardShim.get_board_descr(self.data_board_id)
            self.sfreq = float(BoardShim.get_sampling_rate(self.data_board_id))
            self.rows = np.asarray(BoardShim.get_eeg_channels(self.data_board_id), dtype=np.int64)
        except Exception as err:  # BrainFlowError for boards without EEG
            raise SourceError(f"BrainFlow board {self.board_id} has no EEG description: {err}") from None
        self.ts_row = BoardShim.get_timestamp_channel(self.data_board_id)
        self.counter_row = BoardShim.get_package_num_channel(self.data_board_id)
        names = descr.get("eeg_names", "")
        names = names.split(",") if names else list(config.channel_names)
        if len(names) != len(self.rows):
            names = [f"EEG{i + 1}" for i in range(len(self.rows))]
        names = normalize_names(names)
        if channel_names is not None:
            if len(channel_names) != len(self.rows):
                raise SourceError(f"Board {config.name} has {len(self.rows)} EEG channels; the montage names "
                                  f"{len(channel_names)} ({', '.join(channel_names)}).")
            names = list(channel_names)
        self.extra_rows = dict(extra_rows or {})
        if self.extra_rows:
            self.rows = np.concatenate((self.rows, np.asarray(list(self.extra_rows.values()), dtype=np.int64)))
            names = names + list(self.extra_rows)
        self.config_commands = list(config_commands)
        self.ch_names = rename_channels(names, channel_map, f"board {config.name}")
        self.range_uv = float(config.range_uv)
        self.line_hz = float(line_hz if line_hz is not None else config.line_hz)
        self.name = config.name
        self.board = BoardShim(self.board_id, self.params)
        BoardIds = board_shim().BoardIds

        self.counter_rule = COUNTER_RULES.get(BoardIds(self.data_board_id).name)
        self._last_counter = None
        self._last_ts = None
        self._n = 0
        self.dropped_samples = 0
        self.warning = ftdi_warning(serial_port) if serial_port else None

    def start(self):
        """Prepare the board and start streaming. A start after a stop (``neurofeed check`` runs on
        the same source before the session) begins a new stream: the package counter, the sample
        count and the dropped-sample count start afresh, so the new stream's first sample is
        sample 0 and no gap is invented between the old stream's last counter and the new one's first."""
        BrainFlowError = board_shim().BrainFlowError

        self._last_counter = None
        self._last_ts = None
        self._n = 0
        self.dropped_samples = 0
        if self.warning:
            log.warning(self.warning)
        try:
            self.board.prepare_session()
            for cmd in self.config_commands:
                self.board.config_board(cmd)
                if cmd == AUX_ENABLE_COMMAND and self.aux_channels:
                    log.info("board %s: AUX electrode switched on (config_board %r) as %s", self.name, cmd,
                             ", ".join(self.aux_channels))
            self.board.start_stream(45000)
        except BrainFlowError as err:
            where = self.params.serial_port or self.params.mac_address or self.params.file or "the default device"
            raise SourceError(f"Cannot start board {self.name} (id {self.board_id}) on {where}: {err}") from None

    def config_board(self, command: str) -> str:
        """Send a BrainFlow ``config_board`` command to the started board (e.g. the Cyton's lead-off
        ``z110Z`` used by ``neurofeed check``); returns the board's reply."""
        try:
            return self.board.config_board(command)
        except board_shim().BrainFlowError as err:
            raise SourceError(f"Board {self.name} refused the command {command!r}: {err}") from None

    def read(self) -> Chunk | None:
        if self.board.get_board_data_count() == 0:
            self.nap()  # poll every ~0.5 ms (or spin) so a sample waits at most that long
            return None
        raw = self.board.get_board_data()
        arrival = time.perf_counter_ns()
        now = time.time()
        data = np.ascontiguousarray(raw[self.rows], dtype=np.float64)
        ts = raw[self.ts_row]
        gap = None
        if self.counter_rule is not None:
            counter = raw[self.counter_row]
            rule = self.counter_rule
            missing = missing_before(self._last_counter, counter, rule.modulus, rule.step, rule.per_package)
            self._last_counter = counter[-1]
            if missing.any():
                self.dropped_samples += int(missing.sum())
                data, ts, gap = insert_gaps(data, ts, missing, self._last_ts)
        self._last_ts = float(ts[-1])
        chunk = Chunk(data, ts, arrival, self._n, now - float(ts[-1]), gap)
        self._n += data.shape[1]
        return chunk

    def stop(self):
        try:
            if self.board.is_prepared():
                try:
                    self.board.stop_stream()
                except Exception:  # not streaming
                    pass
                self.board.release_session()
        except Exception as err:  # releasing must never mask the session's own outcome
            log.warning("releasing board %s: %s", self.name, err)

    def describe(self):
        d = super().describe()
        d.update(board_id=self.board_id, dropped_samples=self.dropped_samples, line_hz=self.line_hz)
        if self.extra_rows:
            d["extra_rows"] = dict(self.extra_rows)
        if self.config_commands:
            d["board_config"] = list(self.config_commands)
        if self.aux_channels:
            d["aux_channels"] = list(self.aux_channels)  # the sites on the AUX input (switched on by p50)
        if self.data_board_id != self.board_id:
            d["master_board"] = self.data_board_id
        return d

    @property
    def aux_channels(self) -> list[str]:
        """Names of the channels read from the board's AUX input (a Muse's fifth electrode, on
        BrainFlow's ``other_channels`` row), after ``--channel-map``; [] when it is off."""
        aux = set(aux_rows(self.data_board_id).values())
        n_eeg = len(self.rows) - len(self.extra_rows)
        return [self.ch_names[n_eeg + i] for i, row in enumerate(self.extra_rows.values()) if row in aux]
