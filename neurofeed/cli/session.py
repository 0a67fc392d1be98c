"""``neurofeed session``: a live session (one person, or a dyad) from the command line."""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..core.errors import NeurofeedError
from ..protocol.schema import resolve_protocol
from .common import add_args, add_source_args, board_of, protocol_montage

#: what the session is shown on, recorded and streamed as; (flag, argparse keywords)
SESSION_ARGS = (
    ("--protocol", dict(required=True, help="protocol file or name in protocols/ (e.g. demo)")),
    ("--participant", dict(required=True, help="participant code (letters, digits, - and _; never a name)")),
    ("--out", dict(default="recordings", help="recordings folder (default: recordings/)")),
    ("--headless", dict(action="store_true", help="terminal view instead of windows")),
    ("--display", dict(choices=("auto", "window", "terminal"), default="auto",
                       help="window where a display exists, else a terminal view (default: auto)")),
    ("--participant-screen", dict(type=int, default=None,
                                  help="screen index (0 = primary) for the participant view, full screen there "
                                       "(default: the second screen when there are two; on one screen both windows "
                                       "are tiled side by side)")),
    ("--seconds-scale", dict(type=float, default=1.0, help="compress block durations (e.g. 0.1)")),
    ("--close-after", dict(type=float, default=None, metavar="SECONDS",
                           help="the end screen (session complete, the summary) closes by itself after SECONDS "
                                "(default: it stays until closed when started from a terminal, 10 s otherwise)")),
    ("--no-record", dict(action="store_true", help="do not record (not recommended)")),
    ("--no-lsl", dict(action="store_true", help="no LSL outlets")),
    ("--lsl-prefix", dict(default="neurofeed", metavar="NAME",
                          help="name prefix of the LSL outlets (NAME-feedback, NAME-events; default neurofeed), e.g. "
                               "room2 for a second session on the same network")),
    ("--lsl-notes", dict(action="store_true",
                         help="also stream clinician notes (free text) on the events outlet; by default they stay in "
                              "the recording")),
    ("--check", dict(action=argparse.BooleanOptionalAction, default=None,
                     help="run the signal check (offset, mains, RMS, railed/flat per channel) before the session "
                          "and show it first in the console (default: on for a headset, off for simulated/files)")),
    ("--force", dict(action="store_true",
                     help="start even when the signal check marks a channel FAIL (otherwise the session asks: a "
                          "dialog with windows, a y/N prompt on a terminal; without either it refuses to start)")),
)

#: sham (yoked) feedback and blinding
SHAM_ARGS = (
    ("--yoke-from", dict(metavar="SESSION_DIR",
                         help="a recorded session folder whose feedback the participant sees, block by block (needs a "
                              "protocol with [sham] mode = \"yoked\"); the live SI is still computed and recorded")),
    ("--blind-key", dict(metavar="FILE",
                         help="write the arm (real/sham and the yoked source) to this key file, kept apart; the "
                              "session folder, console and reports say 'blinded' until `neurofeed report --unblind "
                              "FILE`")),
)

#: the two-person dyad: the second person's source
DYAD_ARGS = (
    ("--partner", dict(help="the second person's participant code")),
    ("--partner-board", dict(help="the second person's board config (as --board)")),
    ("--partner-serial-port", dict(default="", help="the second person's serial port")),
    ("--partner-mac-address", dict(default="", help="the second person's Bluetooth MAC address")),
    ("--partner-lsl-name", dict(help="the second person's LSL stream name (implies --partner-board lsl)")),
    ("--partner-montage", dict(help="the second person's montage (default: as --montage)")),
)


def register(sub) -> None:
    """Add ``session`` to the sub-command parsers ``sub``."""
    s = sub.add_parser("session", help="run a live neurofeedback session",
                       description="Run a protocol live: acquisition, feedback, LSL outlets and a crash-safe recording.")
    add_source_args(s, None)  # no default: a forgotten --board must not record simulated data
    add_args(s, SESSION_ARGS)
    add_args(s.add_argument_group("sham and blinding (controlled trials)"), SHAM_ARGS)
    add_args(s.add_argument_group("dyad (two people, two headsets; e.g. --protocol dyadic-resonance)"), DYAD_ARGS)
    s.set_defaults(handler=cmd_session)


def cmd_session(args) -> int:
    """``neurofeed session``: check the arguments, open the source, run the signal check first (a
    headset), ask before starting over a channel marked FAIL, run the views, print the summary."""
    protocol = _session_protocol(args)
    if args.partner or args.partner_board or args.partner_lsl_name or protocol.dyad.enabled:
        from ..dyad.session import cmd_dyad_session

        return cmd_dyad_session(args, protocol, board_of(args))
    from ..live.session import build_session, finish_session, print_summary

    montage = protocol_montage(protocol, board_of(args), args.montage)
    source = _open_session_source(args, protocol, montage)
    signal_check = _signal_check_before_session(args, source, protocol)
    window = _use_windows(args)
    from ..hardware.signal_check import confirm_start
    from ..ui.display import ask_start_anyway

    # a channel marked FAIL: the operator confirms (dialog, terminal) or passed --force; nothing is recorded before
    if not confirm_start(signal_check, force=args.force, window=window, ask_window=ask_start_anyway):
        print("neurofeed: not started: fix the channels marked FAIL and start again (nothing was recorded).",
              file=sys.stderr)
        return 1
    pipeline, recorder = build_session(source, protocol, args.participant, args.out, args.seconds_scale,
                                       record=not args.no_record, lsl=not args.no_lsl, busy_poll=args.busy_poll,
                                       montage=montage, yoke_from=args.yoke_from, blind_key=args.blind_key,
                                       lsl_name=args.lsl_prefix, lsl_notes=args.lsl_notes)
    _print_session_start(args, protocol, source, pipeline)
    done = {}

    def finish():  # once: at the windows' end screen, else below
        if "summary" not in done:
            done["summary"] = finish_session(pipeline, recorder)
        return done["summary"]

    try:
        _run_views(args, pipeline, window, signal_check, finish)
    finally:
        pipeline.stop()
        summary = finish()
    print_summary(summary)
    _raise_session_error(pipeline)
    return 0


def _session_protocol(args):
    """The session's protocol, after the refusals that must come before anything opens or records:
    participant codes, the protocol file, its stimuli, ``--seconds-scale``."""
    from ..protocol.schema import load_protocol
    from ..recording.writer import check_participant_code
    from ..ui.stimuli import check_protocol_stimuli

    # codes first: a code EDF/BDF or a file system cannot carry is refused before anything opens or records
    for code in (args.participant, args.partner):
        if code is not None:
            check_participant_code(code)
    protocol = load_protocol(resolve_protocol(args.protocol))
    check_protocol_stimuli(protocol)  # a typo'd stimulus is a one-line error now, not a blank block later
    if args.seconds_scale <= 0:
        raise NeurofeedError(f"--seconds-scale must be > 0, not {args.seconds_scale}.")
    return protocol


def _open_session_source(args, protocol, montage):
    """The one person's source, as the source options name it."""
    from ..live.session import open_source, parse_channel_map

    return open_source(board_of(args), board_id=args.board_id, serial_port=args.serial_port,
                       mac_address=args.mac_address, file=args.file, lsl_name=args.lsl_name,
                       lsl_type=args.lsl_type, channel_map=parse_channel_map(args.channel_map),
                       protocol=protocol, seconds_scale=args.seconds_scale, montage=montage,
                       line_freq=args.line_freq, assume_uv=args.assume_uv)


def _signal_check_before_session(args, source, protocol):
    """The signal check's result (printed), or None when it is not run: ``--check``/``--no-check``,
    by default on for a headset (a hardware board or an LSL stream), off for simulated data and files."""
    from ..hardware.sources.lsl import LSLSource

    headset = bool(getattr(getattr(source, "config", None), "is_hardware", False)) or isinstance(source, LSLSource)
    if not (args.check if args.check is not None else headset):
        return None
    # the signal check is the session's first screen: offsets, mains, RMS, railed/flat per channel,
    # before the recording starts (a failing channel is named with what to do)
    from ..hardware.signal_check import print_signal_check, signal_check_before_session

    print("Signal check (a few seconds; --no-check skips it) ...", flush=True)
    result = signal_check_before_session(source, protocol)
    print_signal_check(result)
    return result


def _use_windows(args) -> bool:
    """Windows (True) or the terminal view (False): ``--headless``/``--display``, and whether Qt can
    show windows here at all."""
    from ..live.session import has_display

    window = not args.headless and (args.display == "window" or (args.display == "auto" and has_display()))
    # [display] Qt aborts the process when its platform plugin cannot load: check first, fall back
    if window:
        from ..ui.display import windows_problem

        problem = windows_problem()
        if problem:
            print(f"neurofeed: {problem} Showing the terminal view.", file=sys.stderr)
            window = False
    # [/display]
    return window


def _print_session_start(args, protocol, source, pipeline) -> None:
    """The session's first lines: version, protocol, source, montage, reference, mains, arm."""
    print(f"neurofeed {__version__}: {protocol.name} on {source.name} ({source.sfreq:g} Hz, "
          f"{len(source.ch_names)} channels), participant {args.participant}. Research tool, not a medical device.")
    proc = pipeline.processor
    why = "; ".join(f"{r}: {reason}" for r, reason in proc.reference_skipped)
    print(f"montage {', '.join(source.ch_names)}; reference {proc.reference_used}{f' ({why})' if why else ''}; "
          f"mains {proc.line_hz:g} Hz")
    if args.blind_key:
        print(f"arm: blinded (the key is in {args.blind_key})")
    elif args.yoke_from:
        print(f"arm: sham (yoked from {args.yoke_from})")


def _run_views(args, pipeline, window: bool, signal_check, finish) -> None:
    """Run the session until it ends: the windows (``finish`` gives their end screen the summary),
    else the terminal view (Ctrl-C interrupts)."""
    if window:
        from ..ui.display import run_windows

        close_after = args.close_after if args.close_after is not None else (None if sys.stdin.isatty() else 10.0)
        run_windows(pipeline, participant_screen=args.participant_screen, check=signal_check, finish=finish,
                    close_after_s=close_after)
        return
    from ..ui.terminal import TerminalView

    pipeline.start()
    try:
        TerminalView(pipeline).run_until_done()
    except KeyboardInterrupt:
        pass
    pipeline.stop("session complete" if pipeline.engine.finished else "interrupted (Ctrl-C)")


def _raise_session_error(pipeline) -> None:
    """After the summary: the error the session stopped on, or a session that ended without a baseline."""
    if pipeline.error is not None:
        if isinstance(pipeline.error, NeurofeedError):
            raise pipeline.error
        raise NeurofeedError(f"the session stopped on an error: {pipeline.error}")
    if pipeline.processor.baseline_refused:  # ended cleanly (recording closed), but without a baseline
        raise NeurofeedError(pipeline.processor.baseline_refused)
