"""BrainFlow boards (OpenBCI, Muse, synthetic, playback file) as a chunk source."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

from ..boards import BoardConfig
from ..channels import normalize_names
from ..chunk import Chunk
from ..errors import SourceError
from .base import Source, rename_channels

log = logging.getLogger(__name__)


def resolve_board_id(board_id) -> int:
    """A BrainFlow board id from a ``BoardIds`` name or an integer, with a clear error."""
    from brainflow.board_shim import BoardIds

    if isinstance(board_id, str) and not board_id.lstrip("-").isdigit():
        try:
            return BoardIds[board_id.upper()].value
        except KeyError:
            raise SourceError(f"Unknown BrainFlow board {board_id!r}; use a BoardIds name such as "
                              f"SYNTHETIC_BOARD or CYTON_BOARD, or an integer id.") from None
    value = int(board_id)
    if value not in {b.value for b in BoardIds}:
        raise SourceError(f"Unknown BrainFlow board id {value}; valid ids are listed by "
                          f"brainflow.board_shim.BoardIds (e.g. -1 synthetic, 0 cyton).")
    return value


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


def count_dropped(previous, counter: np.ndarray, modulus: int = 256) -> int:
    """Samples missing from a run of package counters (which wrap at ``modulus``).

    ``previous`` is the last counter of the previous chunk (None at the start). A step of 1
    is normal; a larger step means samples were lost on the way (radio, USB, buffer).
    """
    seq = np.concatenate(([previous], counter)) if previous is not None else counter
    if seq.size < 2:
        return 0
    gaps = np.mod(np.diff(seq) - 1, modulus)
    return int(gaps[gaps < modulus - 1].sum())


class BrainFlowSource(Source):
    """Acquire from a BrainFlow board.

    Channel rows, sampling rate and (where the board defines them) channel names come from
    ``BoardShim``; the config supplies names for boards without them, the amplifier range and
    the mains frequency. Dropped samples are counted from gaps in the package counter.

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
        from brainflow.board_shim import BoardShim, BrainFlowInputParams

        BoardShim.disable_board_logger()
        self.config = config
        self.board_id = resolve_board_id(board_id if board_id is not None else config.board_id)
        self.params = BrainFlowInputParams()
        self.params.serial_port = serial_port or ""
        self.params.mac_address = mac_address or ""
        if config.requires == "serial_port" and serial_port and not os.path.exists(serial_port):
            raise SourceError(f"Serial port {serial_port} does not exist; plug in the dongle and pass its "
                              f"device, e.g. --serial-port /dev/ttyUSB0.")
        if config.requires == "serial_port" and not serial_port and not mac_address:
            raise SourceError(f"Board {config.name} needs --serial-port (e.g. /dev/ttyUSB0)"
                              f"{' or --mac-address' if config.name == 'ganglion' else ''}.")
        self.data_board_id = self.board_id
        if config.master_board is not None or self.board_id in (-3, -2):
            if not file:
                raise SourceError(f"Board {config.name} needs --file (a BrainFlow CSV recording).")
            if not os.path.isfile(file):
                raise SourceError(f"Playback file {file} does not exist.")
            self.params.file = str(file)
            self.data_board_id = resolve_board_id(config.master_board or "SYNTHETIC_BOARD")
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
        self._last_counter = None
        self._n = 0
        self.dropped_samples = 0
        self.warning = ftdi_warning(serial_port) if serial_port else None

    def start(self):
        from brainflow.board_shim import BrainFlowError

        if self.warning:
            log.warning(self.warning)
        try:
            self.board.prepare_session()
            for cmd in self.config_commands:
                self.board.config_board(cmd)
            self.board.start_stream(45000)
        except BrainFlowError as err:
            where = self.params.serial_port or self.params.mac_address or self.params.file or "the default device"
            raise SourceError(f"Cannot start board {self.name} (id {self.board_id}) on {where}: {err}") from None

    def read(self) -> Chunk | None:
        if self.board.get_board_data_count() == 0:
            self.nap()  # poll every ~0.5 ms (or spin) so a sample waits at most that long
            return None
        raw = self.board.get_board_data()
        arrival = time.perf_counter_ns()
        now = time.time()
        counter = raw[self.counter_row]
        if counter.size:
            self.dropped_samples += count_dropped(self._last_counter, counter)
            self._last_counter = counter[-1]
        data = np.ascontiguousarray(raw[self.rows], dtype=np.float64)
        ts = raw[self.ts_row]
        chunk = Chunk(data, ts, arrival, self._n, now - float(ts[-1]))
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
        d.update(board_id=self.board_id, dropped_samples=self.dropped_samples)
        return d
