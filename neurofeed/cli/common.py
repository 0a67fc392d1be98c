"""What several sub-commands share: the source options (``--board`` ...), the board they name, and
the montage a protocol asks for on it.

Imports stay light (no numpy, no Qt): ``neurofeed --help`` builds every sub-parser.
"""

from __future__ import annotations

import argparse

from ..core.errors import NeurofeedError

#: the source options: (flag, argparse keywords); one table, read by :func:`add_source_args`
SOURCE_ARGS = (
    ("--board", dict(help="board config name (see `neurofeed boards`): simulated, synthetic, playback-file, cyton, "
                          "cyton-daisy, ganglion, muse-2, muse-s; or 'lsl' / 'file'")),
    ("--board-id", dict(help="any BrainFlow board id (BoardIds name or number), instead of --board")),
    ("--serial-port", dict(default="", help="serial port of the dongle, e.g. /dev/ttyUSB0")),
    ("--mac-address", dict(default="", help="Bluetooth MAC address (Ganglion native BLE, Muse)")),
    ("--file", dict(default="", help="file for the playback-file board or --board file")),
    ("--lsl-name", dict(help="LSL stream name (implies --board lsl)")),
    ("--lsl-type", dict(help="LSL stream type, e.g. EEG (implies --board lsl)")),
    ("--assume-uv", dict(action="store_true",
                         help="an LSL stream whose channels have no unit (or not a voltage): take its samples as µV "
                              "(by default such a stream is refused)")),
    ("--montage", dict(help="where the electrodes sit: a montage of the board's config (see `neurofeed "
                            "montages`), e.g. mu; default: BrainFlow's channel names")),
    ("--line-freq", dict(type=float, choices=(50.0, 60.0), metavar="{50,60}",
                         help="mains frequency in Hz, notched by the DSP chain (default: the board config's line_hz)")),
    ("--channel-map", dict(help="the board's channel names -> 10-10 names, for a board or stream whose names "
                                "are not 10-10 sites, e.g. EEG1=C3,EEG2=C4 (name the site each electrode "
                                "really sits on)")),
    ("--busy-poll", dict(action="store_true",
                         help="spin instead of napping 0.5 ms between polls: samples are picked up within ~0.1 ms; "
                              "costs one CPU core")),
)


def add_args(group, table) -> None:
    """Add each ``(flag, keywords)`` of ``table`` to ``group`` (a parser or an argument group)."""
    for flag, kwargs in table:
        group.add_argument(flag, **kwargs)


def add_source_args(p: argparse.ArgumentParser, default_board=None) -> None:
    """The ``source`` option group (:data:`SOURCE_ARGS`); ``default_board`` is used when neither
    ``--board`` nor ``--board-id`` is given (see :func:`board_of`)."""
    p.set_defaults(default_board=default_board)
    add_args(p.add_argument_group("source"), SOURCE_ARGS)


def board_of(args):
    """The board named, or the sub-command's default when neither --board nor --board-id is given."""
    return args.board or (None if args.board_id else args.default_board)


def protocol_montage(protocol, board: str | None, montage: str | None) -> str | None:
    """The montage a session or a signal check opens a board config with: ``--montage`` if given, else
    the one the protocol asks for on that board (``[signal] montage``); says where the montage's
    added electrodes sit (e.g. "Montage aux-c3: AUX electrode at C3 (as the protocol asks)")."""
    from ..hardware.boards import get_board
    from ..hardware.montages import protocol_montage as montage_for_protocol

    if not board:
        return montage
    try:
        cfg = get_board(board)
    except NeurofeedError:
        return montage  # not a board config (the source says so in its own words)
    name, line = montage_for_protocol(protocol, cfg, montage)
    if line:
        print(line, flush=True)
    return name
