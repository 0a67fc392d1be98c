"""``neurofeed check``: the signal check of every channel before a session (hardware.signal_check)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..core.errors import NeurofeedError
from .common import add_source_args, protocol_montage


def register(sub) -> None:
    """Add ``check`` to the sub-command parsers ``sub``."""
    ck = sub.add_parser("check", help="check the signal of every channel before a session",
                        description="Per channel: DC offset, mains noise, RMS in 1-40 Hz, railed/flat and (Cyton) "
                                    "lead-off impedance; then a blink and a jaw-clench test that confirm the "
                                    "session's gates see them. Exit 0 when every channel passes, 1 otherwise.")
    add_source_args(ck)
    ck.add_argument("--protocol", default="demo", help="the session's protocol (its gates are tested)")
    ck.add_argument("--seconds", type=float, default=4.0, help="seconds of signal measured (default 4)")
    ck.add_argument("--json", help="write the result to this JSON file")
    ck.add_argument("--artifact-tests", action=argparse.BooleanOptionalAction, default=None,
                    help="ask for blinks and a jaw clench (default: when run in a terminal, or on the simulated "
                         "headset, whose participant follows the instructions)")
    ck.add_argument("--no-impedance", action="store_true", help="skip the lead-off impedance measurement")
    ck.set_defaults(handler=cmd_signal_check)


def cmd_signal_check(args) -> int:
    """``neurofeed check``: measure every channel (and test the gates), print it; exit 0 when every
    channel passes, 1 otherwise."""
    from ..hardware.signal_check import print_signal_check, run_signal_check
    from ..live.session import open_source, parse_channel_map
    from ..protocol.schema import load_protocol

    protocol = load_protocol(args.protocol)
    board = args.board
    if board is None and not (args.board_id or args.lsl_name or args.lsl_type):
        raise NeurofeedError("neurofeed check needs a board: name it with --board (e.g. --board cyton "
                             "--serial-port /dev/ttyUSB0, or --board simulated), --board-id, or --lsl-name.")
    script = None
    if board == "simulated":
        from ..hardware.sources.simulated import SimulationScript

        # the simulated participant follows the check's instructions: 0.5 s settling + 4 s measured,
        # then blinks in the blink window and a clench in the jaw window
        t0 = 0.5 + args.seconds
        script = SimulationScript(mu_factor=[], emg=[(t0 + 6.0, t0 + 8.0)], blinks=[t0 + 1.5, t0 + 3.0])
    source = open_source(board, board_id=args.board_id, serial_port=args.serial_port, mac_address=args.mac_address,
                         file=args.file, lsl_name=args.lsl_name, lsl_type=args.lsl_type,
                         channel_map=parse_channel_map(args.channel_map), protocol=protocol, script=script,
                         montage=protocol_montage(protocol, board, args.montage), line_freq=args.line_freq,
                         assume_uv=args.assume_uv)
    tests = args.artifact_tests
    if tests is None:
        tests = board == "simulated" or sys.stdin.isatty()
    result = run_signal_check(source, protocol, seconds=args.seconds, artifact_tests=tests, impedance=not args.no_impedance)
    print_signal_check(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0 if result["ok"] else 1
