"""The ``neurofeed`` command and its sub-commands.

User errors end in one line on stderr (``neurofeed: error: ...``) and exit status 2, without
a traceback; anything already recorded stays on disk.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from . import __version__
from .errors import NeurofeedError
from .protocol.schema import resolve_protocol



def _source_args(p: argparse.ArgumentParser, default_board=None) -> None:
    g = p.add_argument_group("source")
    p.set_defaults(default_board=default_board)
    g.add_argument("--board",
                   help="board config name (see `neurofeed boards`): simulated, synthetic, playback-file, cyton, "
                        "cyton-daisy, ganglion, muse-2, muse-s; or 'lsl' / 'file'")
    g.add_argument("--board-id", help="any BrainFlow board id (BoardIds name or number), instead of --board")
    g.add_argument("--serial-port", default="", help="serial port of the dongle, e.g. /dev/ttyUSB0")
    g.add_argument("--mac-address", default="", help="Bluetooth MAC address (Ganglion native BLE, Muse)")
    g.add_argument("--file", default="", help="file for the playback-file board or --board file")
    g.add_argument("--lsl-name", help="LSL stream name (implies --board lsl)")
    g.add_argument("--lsl-type", help="LSL stream type, e.g. EEG (implies --board lsl)")
    g.add_argument("--channel-map", help="rename board channels to 10-10 names, e.g. AUX1=C3,AUX2=C4")
    g.add_argument("--busy-poll", action="store_true",
                   help="spin instead of napping 0.5 ms between polls: samples are picked up within ~0.1 ms; "
                        "costs one CPU core")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurofeed",
        description="Real-time EEG mu-rhythm neurofeedback (a research tool, not a medical device).",
        epilog="Start with: neurofeed session --board simulated --protocol demo --participant P01")
    parser.add_argument("--version", action="version", version=f"neurofeed {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("session", help="run a live neurofeedback session",
                       description="Run a protocol live: acquisition, feedback, LSL outlets and a crash-safe recording.")
    _source_args(s, None)  # no default: a forgotten --board must not record simulated data
    s.add_argument("--protocol", required=True, help="protocol file or name in protocols/ (e.g. demo)")
    s.add_argument("--participant", required=True, help="participant code (letters, digits, - and _; never a name)")
    s.add_argument("--out", default="recordings", help="recordings folder (default: recordings/)")
    s.add_argument("--headless", action="store_true", help="terminal view instead of windows")
    s.add_argument("--display", choices=("auto", "window", "terminal"), default="auto",
                   help="window where a display exists, else a terminal view (default: auto)")
    s.add_argument("--participant-screen", type=int, default=None, help="screen index for the participant view")
    s.add_argument("--seconds-scale", type=float, default=1.0, help="compress block durations (e.g. 0.1)")
    s.add_argument("--no-record", action="store_true", help="do not record (not recommended)")
    s.add_argument("--no-lsl", action="store_true", help="no LSL outlets")

    sub.add_parser("boards", help="list the board configs", description="List board configs in configs/.")

    pr = sub.add_parser("protocols", help="list or check protocol files", description="List or validate protocols.")
    prs = pr.add_subparsers(dest="protocols_command", metavar="ACTION")
    pl = prs.add_parser("list", help="name, condition, direction and duration of each protocol")
    pl.add_argument("folder", nargs="?", default=None,
                    help="a folder of protocol files (default: your own protocols, then the shipped library)")
    pc = prs.add_parser("check", help="validate protocol files")
    pc.add_argument("files", nargs="+")
    pc.add_argument("--board", help="also check the channels against this board's montage")

    r = sub.add_parser("replay", help="run recorded files through the same pipeline",
                       description="Replay EDF/BDF/FIF files or neurofeed session folders through the live pipeline.")
    r.add_argument("files", nargs="+", help="EDF/BDF/FIF files or neurofeed session folders")
    r.add_argument("--protocol", help="protocol (default: a session's own; for other files action-observation-research)")
    r.add_argument("--speed", choices=("max", "1"), default="max", help="as fast as possible (max) or real time (1)")
    r.add_argument("--display", action="store_true", help="show the views while replaying (with --speed 1)")
    r.add_argument("--baseline-label", help="annotation label whose segments form the baseline (e.g. T0)")
    r.add_argument("--out", default="replay-out", help="output folder (feedback.tsv, summary.json per file)")
    r.add_argument("--jobs", type=int, default=1, help="files in parallel (joblib)")

    rc = sub.add_parser("recover", help="turn an interrupted session's journal into a BDF+ file")
    rc.add_argument("path", help="the session folder")

    rp = sub.add_parser("report", help="HTML report of a session, a replay or a participant folder")
    rp.add_argument("path")
    rp.add_argument("--out", help="output folder (default: <path>/report)")

    eb = sub.add_parser("export-bids", help="write a session into a BIDS dataset (mne-bids)")
    eb.add_argument("path", help="the session folder")
    eb.add_argument("--root", required=True, help="BIDS root folder")
    eb.add_argument("--task", default="neurofeedback")

    sc = sub.add_parser("screenshot", help="render both views offscreen to PNG")
    sc.add_argument("--protocol", default="demo")
    sc.add_argument("--out", required=True, help="PNG path (two files: *-participant.png, *-console.png)")
    sc.add_argument("--seconds", type=float, default=14.5, help="simulated seconds before the picture")

    b = sub.add_parser("bench", help="benchmarks")
    bs = b.add_subparsers(dest="bench_command", metavar="WHAT")
    bl = bs.add_parser("latency", help="electrode-to-feedback latency of the live pipeline",
                       description="Without --board: electrode -> feedback through an emulated Cyton read by "
                                   "BrainFlow's own driver, timed at the LSL feedback outlet against the true "
                                   "envelope. With --board: the compute figures of the live pipeline on that board.")
    _source_args(bl, None)
    bl.add_argument("--seconds", type=float, default=60.0)
    # --- latency helper: electrode -> feedback options ---
    bl.add_argument("--estimator", choices=("wcfir", "cfir", "iir", "window"),
                    help="override the protocol's estimator")
    bl.add_argument("--delay-s", type=float, help="override the protocol's designed delay (s)")
    bl.add_argument("--burst-ms", type=float, default=0.0,
                    help="emulated Cyton writes its packets in bursts this often (16: an FTDI latency timer "
                         "at 16 ms; 48: Muse-style 12-sample packets)")
    # --- end latency helper ---
    bl.add_argument("--json", help="write the figures to this JSON file")
    bl.add_argument("--display", action="store_true", help="draw the views offscreen and time the frames")
    bl.add_argument("--protocol", default="demo")
    em = sub.add_parser("emulate", help="an OpenBCI Cyton on a pseudo-terminal, for trying the real driver",
                        description="Emulate an OpenBCI Cyton (or Cyton + Daisy) on a pseudo-terminal that "
                                    "BrainFlow's own driver reads: prints the port, runs until Ctrl-C.")
    em.add_argument("board", choices=("cyton", "cyton-daisy"))
    em.add_argument("--file", help="EDF/BDF to send (channels picked by 10-10 name, resampled); "
                                   "default: the simulated headset")
    em.add_argument("--montage", default="default",
                    help="which sites the board's channels carry: a montage of the board config (`neurofeed "
                         "montages`), e.g. mu; default: BrainFlow's")
    em.add_argument("--offset-uv", type=float, default=0.0, help="DC electrode offsets, +X/-X alternating (µV)")
    em.add_argument("--drift-uv-per-s", type=float, default=0.0, help="offset drift (µV/s), signs as the offsets")
    em.add_argument("--drop-every", type=int, default=None, help="skip every N-th sample number (dropped packets)")
    em.add_argument("--railed-channel", type=int, default=None, help="this channel (1-based) sits at the rail")
    em.add_argument("--impedance-kohm", type=float, default=5.0,
                    help="electrode impedance shown by a lead-off measurement (kΩ, default 5)")
    em.add_argument("--speed", type=float, default=1.0, help="time compression (> 1 streams faster than real time)")
    return parser


def _board(args):
    """The board named, or the sub-command's default when neither --board nor --board-id is given."""
    return args.board or (None if args.board_id else args.default_board)


def cmd_boards(args) -> int:
    from .boards import list_boards

    for b in list_boards():
        print(f"{b.name:<14s} {str(b.board_id):<22s} {b.description}")
    return 0


def cmd_protocols(args) -> int:
    from .protocol.schema import load_protocol, protocol_files

    if args.protocols_command == "list":
        files = sorted(Path(args.folder).glob("*.toml")) if args.folder else protocol_files()
        print(f"{'name':<36s} {'condition':<40s} {'direction':<9s} {'minutes':>7s}")
        for f in files:
            p = load_protocol(f)
            print(f"{p.name:<36s} {p.protocol.condition[:40]:<40s} {p.protocol.direction:<9s} "
                  f"{p.total_duration_s() / 60:7.1f}")
        return 0
    if args.protocols_command == "check":
        bad = 0
        names = None
        if args.board:
            from .session import open_source

            src = open_source(args.board)
            names = src.ch_names
        for f in args.files:
            try:
                p = load_protocol(resolve_protocol(f))
                if names is not None:
                    p.check_montage(names)
                print(f"ok   {f}: {p.name} ({p.protocol.direction}, {p.total_duration_s() / 60:.1f} min)")
            except NeurofeedError as err:
                bad += 1
                print(f"FAIL {err}", file=sys.stderr)
        return 2 if bad else 0
    print("usage: neurofeed protocols {list,check}", file=sys.stderr)
    return 2


def cmd_session(args) -> int:
    from .protocol.schema import load_protocol
    from .session import build_session, finish_session, has_display, open_source, parse_channel_map, print_summary

    protocol = load_protocol(resolve_protocol(args.protocol))
    if args.seconds_scale <= 0:
        raise NeurofeedError(f"--seconds-scale must be > 0, not {args.seconds_scale}.")
    source = open_source(_board(args), board_id=args.board_id, serial_port=args.serial_port,
                         mac_address=args.mac_address, file=args.file, lsl_name=args.lsl_name,
                         lsl_type=args.lsl_type, channel_map=parse_channel_map(args.channel_map),
                         protocol=protocol, seconds_scale=args.seconds_scale)
    pipeline, recorder = build_session(source, protocol, args.participant, args.out, args.seconds_scale,
                                       record=not args.no_record, lsl=not args.no_lsl, busy_poll=args.busy_poll)
    window = not args.headless and (args.display == "window" or (args.display == "auto" and has_display()))
    print(f"neurofeed {__version__}: {protocol.name} on {source.name} ({source.sfreq:g} Hz, "
          f"{len(source.ch_names)} channels), participant {args.participant}. Research tool, not a medical device.")
    try:
        if window:
            from .feedback.display import run_windows

            run_windows(pipeline, participant_screen=args.participant_screen)
        else:
            from .feedback.terminal import TerminalView

            pipeline.start()
            try:
                TerminalView(pipeline).run_until_done()
            except KeyboardInterrupt:
                pass
            pipeline.stop("session complete" if pipeline.engine.finished else "interrupted (Ctrl-C)")
    finally:
        pipeline.stop()
        summary = finish_session(pipeline, recorder)
    print_summary(summary)
    if pipeline.error is not None:
        if isinstance(pipeline.error, NeurofeedError):
            raise pipeline.error
        raise NeurofeedError(f"the session stopped on an error: {pipeline.error}")
    return 0


def cmd_emulate(args) -> int:
    import signal as _signal
    import threading

    from .emulator import CytonEmulator, from_edf, montage_names

    if args.speed <= 0:
        raise NeurofeedError(f"--speed must be > 0, not {args.speed}.")
    if args.drop_every is not None and args.drop_every < 2:
        raise NeurofeedError(f"--drop-every must be >= 2, not {args.drop_every}.")
    n_ch = 16 if args.board == "cyton-daisy" else 8
    if args.railed_channel is not None and not 1 <= args.railed_channel <= n_ch:
        raise NeurofeedError(f"--railed-channel must be 1..{n_ch}, not {args.railed_channel}.")
    if args.impedance_kohm < 0:
        raise NeurofeedError(f"--impedance-kohm must be >= 0, not {args.impedance_kohm}.")
    opts = dict(speed=args.speed, offsets_uv=args.offset_uv, drift_uv_per_s=args.drift_uv_per_s,
                drop_every=args.drop_every, impedance_kohm=args.impedance_kohm,
                railed_channel=None if args.railed_channel is None else args.railed_channel - 1)
    names = montage_names(args.board, args.montage)
    if args.file:
        emu = from_edf(args.file, args.board, args.montage, **opts)
        what = Path(args.file).name
    else:
        from .sources.simulated import MuSimulator

        sim = MuSimulator(sfreq=125.0 if n_ch == 16 else 250.0, ch_names=names, seed=0)
        emu = CytonEmulator(lambda k0, n: sim.generate(n)[0], daisy=n_ch == 16, **opts)
        what = "the simulated headset"
    stop = threading.Event()
    _signal.signal(_signal.SIGTERM, lambda *_: stop.set())
    with emu:
        print(f"{emu.port}", flush=True)
        print(f"neurofeed emulate: {args.board} on {emu.port} sending {what} as {' '.join(names)} "
              f"(montage {args.montage}); try: neurofeed session --board {args.board} --serial-port {emu.port} "
              f"--montage {args.montage} --protocol demo --participant P01. Ctrl-C stops.", file=sys.stderr, flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        print(f"neurofeed emulate: stopped after {emu.sent_samples} samples ({emu.dropped_samples} dropped on purpose).",
              file=sys.stderr, flush=True)
    return 0


def cmd_replay(args) -> int:
    from .replay import replay_many

    replay_many(args.files, protocol=resolve_protocol(args.protocol) if args.protocol else None, speed=args.speed,
                baseline_label=args.baseline_label, out=args.out, jobs=args.jobs, display=args.display)
    return 0


def cmd_recover(args) -> int:
    from .recording.bdf import recover

    out = recover(args.path)
    print(f"recovered: {out}")
    return 0


def cmd_report(args) -> int:
    from .report import make_report

    out = make_report(args.path, args.out)
    print(f"report: {out}")
    return 0


def cmd_export_bids(args) -> int:
    from .report import export_bids

    out = export_bids(args.path, args.root, args.task)
    print(f"BIDS: {out}")
    return 0


def cmd_screenshot(args) -> int:
    from .feedback.display import screenshot

    for out in screenshot(resolve_protocol(args.protocol), args.out, args.seconds):
        print(out)
    return 0


def cmd_bench(args) -> int:
    if args.bench_command != "latency":
        print("usage: neurofeed bench latency ...", file=sys.stderr)
        return 2
    from .bench import electrode_to_feedback_benchmark, latency_benchmark, print_e2e, print_latency

    args.board, args.protocol = _board(args), resolve_protocol(args.protocol)
    if args.board is None:  # --- latency helper: the default is electrode -> feedback ---
        result = electrode_to_feedback_benchmark(args)
        print_e2e(result)
    else:
        result = latency_benchmark(args)
        print_latency(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


COMMANDS = {"session": cmd_session, "boards": cmd_boards, "protocols": cmd_protocols, "replay": cmd_replay,
            "recover": cmd_recover, "emulate": cmd_emulate, "report": cmd_report, "export-bids": cmd_export_bids,
            "screenshot": cmd_screenshot, "bench": cmd_bench}


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="neurofeed: %(levelname)s: %(message)s")
    if not args.command:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except NeurofeedError as err:
        print(f"neurofeed: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("neurofeed: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
