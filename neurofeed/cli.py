"""The ``neurofeed`` command and its sub-commands.

User errors end in one line on stderr (``neurofeed: error: ...``) and exit status 2, without
a traceback; anything already recorded stays on disk.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from . import __version__
from .core.errors import NeurofeedError
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
    g.add_argument("--assume-uv", action="store_true",
                   help="an LSL stream whose channels have no unit (or not a voltage): take its samples as µV "
                        "(by default such a stream is refused)")
    g.add_argument("--montage", help="where the electrodes sit: a montage of the board's config (see `neurofeed "
                                     "montages`), e.g. mu; default: BrainFlow's channel names")
    g.add_argument("--line-freq", type=float, choices=(50.0, 60.0), metavar="{50,60}",
                   help="mains frequency in Hz, notched by the DSP chain (default: the board config's line_hz)")
    g.add_argument("--channel-map", help="the board's channel names -> 10-10 names, for a board or stream whose names "
                                         "are not 10-10 sites, e.g. EEG1=C3,EEG2=C4 (name the site each electrode "
                                         "really sits on)")
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
    s.add_argument("--participant-screen", type=int, default=None,
                   help="screen index (0 = primary) for the participant view, full screen there (default: the "
                        "second screen when there are two; on one screen both windows are tiled side by side)")
    s.add_argument("--seconds-scale", type=float, default=1.0, help="compress block durations (e.g. 0.1)")
    s.add_argument("--close-after", type=float, default=None, metavar="SECONDS",
                   help="the end screen (session complete, the summary) closes by itself after SECONDS (default: "
                        "it stays until closed when started from a terminal, 10 s otherwise)")
    s.add_argument("--no-record", action="store_true", help="do not record (not recommended)")
    s.add_argument("--no-lsl", action="store_true", help="no LSL outlets")
    s.add_argument("--lsl-prefix", default="neurofeed", metavar="NAME",
                   help="name prefix of the LSL outlets (NAME-feedback, NAME-events; default neurofeed), e.g. room2 "
                        "for a second session on the same network")
    s.add_argument("--lsl-notes", action="store_true",
                   help="also stream clinician notes (free text) on the events outlet; by default they stay in the recording")
    s.add_argument("--check", action=argparse.BooleanOptionalAction, default=None,
                   help="run the signal check (offset, mains, RMS, railed/flat per channel) before the session "
                        "and show it first in the console (default: on for a headset, off for simulated/files)")
    s.add_argument("--force", action="store_true",
                   help="start even when the signal check marks a channel FAIL (otherwise the session asks: a "
                        "dialog with windows, a y/N prompt on a terminal; without either it refuses to start)")
    # sham (yoked) feedback, blinding, and the two-person dyad
    sh = s.add_argument_group("sham and blinding (controlled trials)")
    sh.add_argument("--yoke-from", metavar="SESSION_DIR",
                    help="a recorded session folder whose feedback the participant sees, block by block (needs a "
                         "protocol with [sham] mode = \"yoked\"); the live SI is still computed and recorded")
    sh.add_argument("--blind-key", metavar="FILE",
                    help="write the arm (real/sham and the yoked source) to this key file, kept apart; the session "
                         "folder, console and reports say 'blinded' until `neurofeed report --unblind FILE`")
    dy = s.add_argument_group("dyad (two people, two headsets; e.g. --protocol dyadic-resonance)")
    dy.add_argument("--partner", help="the second person's participant code")
    dy.add_argument("--partner-board", help="the second person's board config (as --board)")
    dy.add_argument("--partner-serial-port", default="", help="the second person's serial port")
    dy.add_argument("--partner-mac-address", default="", help="the second person's Bluetooth MAC address")
    dy.add_argument("--partner-lsl-name", help="the second person's LSL stream name (implies --partner-board lsl)")
    dy.add_argument("--partner-montage", help="the second person's montage (default: as --montage)")

    ck = sub.add_parser("check", help="check the signal of every channel before a session",
                        description="Per channel: DC offset, mains noise, RMS in 1-40 Hz, railed/flat and (Cyton) "
                                    "lead-off impedance; then a blink and a jaw-clench test that confirm the "
                                    "session's gates see them. Exit 0 when every channel passes, 1 otherwise.")
    _source_args(ck)
    ck.add_argument("--protocol", default="demo", help="the session's protocol (its gates are tested)")
    ck.add_argument("--seconds", type=float, default=4.0, help="seconds of signal measured (default 4)")
    ck.add_argument("--json", help="write the result to this JSON file")
    ck.add_argument("--artifact-tests", action=argparse.BooleanOptionalAction, default=None,
                    help="ask for blinks and a jaw clench (default: when run in a terminal, or on the simulated "
                         "headset, whose participant follows the instructions)")
    ck.add_argument("--no-impedance", action="store_true", help="skip the lead-off impedance measurement")

    sub.add_parser("boards", help="list the board configs",
                   description="List the board configs (configs/, overlaid by the user's boards folder and "
                               "$NEUROFEED_CONFIGS) and where each comes from.")

    pr = sub.add_parser("protocols", help="list or check protocol files", description="List or validate protocols.")
    prs = pr.add_subparsers(dest="protocols_command", metavar="ACTION")
    pl = prs.add_parser("list", help="name, condition, direction and duration of each protocol")
    pl.add_argument("folder", nargs="?", default=None,
                    help="a folder of protocol files (default: your own protocols, then the shipped library)")
    pc = prs.add_parser("check", help="validate protocol files (and their fit to a board's montage)",
                        description="Validate protocol files; with --board, also check the targets and the "
                                    "reference against the board's montage (no device is opened) and print the "
                                    "reference each protocol will use there.")
    pc.add_argument("files", nargs="+")
    pc.add_argument("--board", help="a board config name, or 'all' for every board and each of its montages")
    pc.add_argument("--montage", help="a montage of the board (default: BrainFlow's), or 'all' for each of them")

    mo = sub.add_parser("montages", help="list each board's montages and the reference every protocol uses there",
                        description="List the board configs' montages (where each electrode sits) and, per shipped "
                                    "protocol, the reference it will use on each.")
    mo.add_argument("--board", help="only this board")
    mo.add_argument("--markdown", action="store_true", help="print a Markdown table (board, montage, channels, "
                                                            "reference per protocol)")
    mo.add_argument("--figure", metavar="DIR", help="write a placement figure per montage to "
                                                   "DIR/montage-<board>-<name>.png")

    # -- replay --
    r = sub.add_parser("replay", help="run recorded files through the same pipeline",
                       description="Replay EDF/BDF/FIF files, neurofeed session folders, folders of them or BIDS "
                                   "datasets through the live pipeline. --mode causal (default) shows what the live "
                                   "loop would have shown (baseline from the first baseline segment, at its time; "
                                   "refused if it holds less clean signal than the protocol's [baseline] min_clean_s); "
                                   "--mode offline pools the baseline over every baseline segment (two passes); "
                                   "--baseline-from FILE takes it from another recording of the same person.")
    r.add_argument("files", nargs="+", metavar="PATH",
                   help="EDF/BDF/FIF files, neurofeed session folders, folders of them or a BIDS root")
    r.add_argument("--protocol", help="protocol (default: a session's own; for other files action-observation-research)")
    r.add_argument("--mode", choices=("causal", "offline"), default="causal",
                   help="causal: as live (default); offline: pooled baseline, estimator pre-fitted")
    r.add_argument("--speed", choices=("max", "1"), default="max", help="as fast as possible (max) or real time (1)")
    r.add_argument("--display", action="store_true", help="show the views while replaying (with --speed 1)")
    r.add_argument("--baseline-label", help="annotation label whose segments form the baseline (e.g. T0)")
    r.add_argument("--baseline-from", metavar="FILE",
                   help="take the baseline (and the fitted estimator) from the --baseline-label segments of another "
                        "recording of the same person, same montage (e.g. EEGMMIDB's R01 rest run for its task runs)")
    r.add_argument("--out", default="replay-out", help="output folder (feedback.tsv, summary.json per file; group.json)")
    r.add_argument("--jobs", type=int, default=1, help="files in parallel on this machine (joblib)")
    r.add_argument("--line-freq", type=float, choices=(50.0, 60.0), metavar="{50,60}",
                   help="mains frequency of a recording that does not declare one (a neurofeed session's header, "
                        "BIDS PowerLineFrequency and MNE's line_freq come first); without any, 50 Hz with a warning")
    r.add_argument("--channel-types", metavar="NAME=TYPE,...",
                   help="channel types over the file's own, e.g. EOG1=eog,X5=ecg; only EEG channels are replayed "
                        "(EOG/ECG/EMG/misc stay out of the average reference and the gates)")
    r.add_argument("--label-map", metavar="FILE",
                   help='rename annotation labels per file or run (JSON or TOML), e.g. {"*R0[56].edf": {"T1": "fists", '
                        '"T2": "feet"}} or {"R03": {"T1": "left-fist"}}; a label that means different tasks in '
                        'different runs (EEGMMIDB T1/T2) is otherwise kept apart per run (R03/T1)')
    r.add_argument("--scheduler", metavar="ADDRESS",
                   help="a Dask distributed scheduler to replay on: tls://HOST:PORT with the three --tls-* files, or "
                        "tcp://HOST:PORT on a trusted network only (Dask sends pickles); workers must see the files "
                        "and --out")
    r.add_argument("--tls-ca-file", metavar="PEM", help="tls:// scheduler: the cluster's CA certificate")
    r.add_argument("--tls-cert", metavar="PEM", help="tls:// scheduler: this client's certificate")
    r.add_argument("--tls-key", metavar="PEM", help="tls:// scheduler: this client's private key")
    # -- end replay --

    rc = sub.add_parser("recover", help="turn an interrupted session's journal into a BDF+ file")
    rc.add_argument("path", help="the session folder")

    rp = sub.add_parser("report", help="HTML report of a session, a replay or a participant folder")
    rp.add_argument("path")
    rp.add_argument("--out", help="output folder (default: <path>/report)")
    rp.add_argument("--epochs-out", metavar="FILE-epo.fif",
                    help="replay outputs: also write the event-locked EEG epochs (-1…+4 s) as MNE Epochs")
    rp.add_argument("--erd-baseline", choices=("pre-event", "session"), default="pre-event",
                    help="replay outputs: ERD/ERS relative to each trial's own pre-event interval (default, -1.0 to "
                         "-0.25 s) or to the replay's session baseline (labelled as such)")
    rp.add_argument("--unblind", metavar="KEY_FILE",
                    help="a blinded session: name its arm from this key file (written by --blind-key)")

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
    # electrode -> feedback options
    bl.add_argument("--estimator", choices=("wcfir", "cfir", "iir", "window", "learned"),
                    help="override the protocol's estimator")
    bl.add_argument("--delay-s", type=float, help="override the protocol's designed delay (s)")
    bl.add_argument("--bar-smoothing-s", type=float,
                    help="override the protocol's [feedback] smoothing_s, the bar's time constant (s)")
    bl.add_argument("--burst-ms", type=float, default=0.0,
                    help="emulated Cyton writes its packets in bursts this often (16: an FTDI latency timer "
                         "at 16 ms; 48: Muse-style 12-sample packets)")
    bl.add_argument("--signal", choices=("both", "eeg", "scripted"), default="both",
                    help="what the emulated electrodes carry: real EEG (BrainFlow's default Cyton montage; "
                         "see --eeg-file), the scripted mu steps, or both one after the other (default)")
    bl.add_argument("--eeg-file", help="EDF/BDF with Fp1 Fp2 C3 C4 P7 P8 O1 O2 for --signal eeg "
                                       "(default: EEGMMIDB S001R04, neurofeed.devtools.bench.real_eeg_path)")
    bl.add_argument("--json", help="write the figures to this JSON file")
    bl.add_argument("--display", action="store_true", help="draw the views offscreen and time the frames")
    bl.add_argument("--protocol", default="demo")
    em = sub.add_parser("emulate", help="an OpenBCI Cyton on a pseudo-terminal, or a Muse on LSL, for trying the real path",
                        description="Emulate an OpenBCI Cyton (or Cyton + Daisy) on a pseudo-terminal that "
                                    "BrainFlow's own driver reads: prints the port, runs until Ctrl-C. muse-lsl: a Muse "
                                    "streamed over LSL as muselsl/BlueMuse publish it (needs --file).")
    em.add_argument("board", choices=("cyton", "cyton-daisy", "muse-lsl"))
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
    em.add_argument("--lose-chunks", type=float, default=0.0, metavar="PCT",
                    help="muse-lsl: lose this percentage of 12-sample chunks (lost BLE notifications)")
    em.add_argument("--drift", type=float, default=0.0, metavar="PCT",
                    help="muse-lsl: device clock error in %% (0.5: 257.28 samples per second)")
    em.add_argument("--seconds", type=float, default=None, help="muse-lsl: stop after this many seconds")
    em.add_argument("--lsl-name", default="Muse-EMU0", help="muse-lsl: the stream's name (default Muse-EMU0)")
    return parser


def _protocol_montage(protocol, board: str | None, montage: str | None) -> str | None:
    """The montage a session or check opens a board config with: ``--montage`` if given, else
    the one the protocol asks for on that board (``[signal] montage``); says where the montage's
    added electrodes sit (e.g. "Montage aux-c3: AUX electrode at C3 (as the protocol asks)")."""
    from .hardware.boards import get_board
    from .hardware.montages import protocol_montage

    if not board:
        return montage
    try:
        cfg = get_board(board)
    except NeurofeedError:
        return montage  # not a board config (the source says so in its own words)
    name, line = protocol_montage(protocol, cfg, montage)
    if line:
        print(line, flush=True)
    return name


def _board(args):
    """The board named, or the sub-command's default when neither --board nor --board-id is given."""
    return args.board or (None if args.board_id else args.default_board)


def cmd_boards(args) -> int:
    from .hardware.boards import list_boards

    for b in list_boards():
        print(f"{b.name:<14s} {str(b.board_id):<22s} {b.description} [montages: {', '.join(b.montage_names())}; "
              f"mains {b.line_hz:g} Hz] from {b.origin}")
    return 0


def cmd_protocols(args) -> int:
    from .core.library import library_files
    from .protocol.schema import load_protocol

    if args.protocols_command == "list":
        if args.folder:
            files = [(f, str(Path(args.folder))) for f in sorted(Path(args.folder).glob("*.toml"))]
        else:
            files = [(f.path, f.where) for f in library_files("protocols").values()]
        print(f"{'name':<36s} {'condition':<40s} {'direction':<9s} {'minutes':>7s}  from")
        for f, where in files:
            p = load_protocol(f)
            print(f"{p.name:<36s} {p.protocol.condition[:40]:<40s} {p.protocol.direction:<9s} "
                  f"{p.total_duration_s() / 60:7.1f}  {where}")
        return 0
    if args.protocols_command == "check":
        return _check_protocols(args.files, args.board, args.montage)
    print("usage: neurofeed protocols {list,check}", file=sys.stderr)
    return 2


BAR_BUDGET_S = 0.05  # the participant's budget, electrode -> painted bar


def _bar_delay_text(p) -> str:
    """The protocol's bar delay, electrode -> painted bar, as ``protocols check`` prints it: the
    estimator's typical effective delay on real EEG plus each [feedback] smoother."""
    from .dsp.accuracy import typical_effective_delay_s

    s, fb = p.signal, p.feedback
    est = typical_effective_delay_s(s.estimator, s.delay_s)
    if est != est:  # no figure for this estimator yet
        return (f"bar delay: no typical figure for the {s.estimator} estimator (measure it: neurofeed bench "
                f"latency --protocol ...) + [feedback] smoothing_s {fb.smoothing_s:g} s + easing_s {fb.easing_s:g} s")
    total = est + fb.bar_delay_s()
    design = "design chosen on the baseline" if s.delay_s == "choose" else f"{s.estimator} {s.delay_s!r}"
    if s.estimator not in ("wcfir", "cfir"):
        design = s.estimator
    verdict = ("within the 50-ms budget" if total <= BAR_BUDGET_S + 1e-9
               else "over the 50-ms budget: the protocol says why")
    return (f"bar delay ~{1000 * total:.0f} ms ({design} ~{1000 * est:.0f} ms + [feedback] smoothing_s "
            f"{fb.smoothing_s:g} s + easing_s {fb.easing_s:g} s), {verdict}")


def _check_protocols(files, board=None, montage=None) -> int:
    """``protocols check``: validate each file and, with a board, its fit to the board's montage(s).

    A named board and montage: every protocol must fit (exit 2 otherwise). ``--board all`` or
    ``--montage all``: each combination gets a line (``ok`` or ``--`` with the reason); a protocol
    fails only if it fits none of them.
    """
    from .hardware.boards import get_board, list_boards
    from .hardware.montages import advice, check_declared_montages, fit_protocol
    from .protocol.schema import baseline_shortfall, load_protocol
    from .ui.stimuli import check_protocol_stimuli

    if montage and not board:
        raise NeurofeedError("--montage needs --board (e.g. --board cyton --montage mu).")
    boards = (list_boards() if board == "all" else [get_board(board)]) if board else []
    every = board == "all" or montage == "all"
    combos = [(b, m) for b in boards for m in (b.montage_names() if every and montage in (None, "all") else [montage])]
    for b, m in combos:
        b.montage_spec(m)  # an unknown montage name: one line listing the board's montages
    bad = 0
    for f in files:
        try:
            p = load_protocol(resolve_protocol(f))
            check_protocol_stimuli(p)
            check_declared_montages(p)
            short = baseline_shortfall(p)
            if short:
                raise NeurofeedError(f"{p.path}: {short}.")
        except NeurofeedError as err:
            bad += 1
            print(f"FAIL {err}", file=sys.stderr)
            continue
        if not combos:
            print(f"ok   {f}: {p.name} ({p.protocol.direction}, {p.total_duration_s() / 60:.1f} min); {_bar_delay_text(p)}")
            continue
        fits = [fit_protocol(p, b, m if (m or every) else p.signal.montage.get(b.name)) for b, m in combos]
        for fit in fits:
            if fit.ok:
                print(f"ok   {fit.line()}")
            elif every:
                print(f"--   {fit.line()}")
            else:
                print(f"FAIL {p.path}: {fit.line()}; {advice(p, get_board(fit.board), fit.montage)}.", file=sys.stderr)
        if not any(fit.ok for fit in fits):
            bad += 1
            if every:
                print(f"FAIL {p.path}: fits none of the {len(fits)} board montages checked.", file=sys.stderr)
    return 2 if bad else 0


def cmd_montages(args) -> int:
    from .hardware.boards import get_board, list_boards
    from .hardware.montages import fit_protocol, montage_table, plot_montage
    from .protocol.schema import PROTOCOL_DIR, load_protocol

    boards = [get_board(args.board)] if args.board else list_boards()
    protocols = [load_protocol(f) for f in sorted(PROTOCOL_DIR.glob("*.toml"))]
    if args.figure:
        out = Path(args.figure)
        out.mkdir(parents=True, exist_ok=True)
        for b in (boards if args.board else [b for b in boards if b.is_hardware]):
            for m in b.montage_names():
                path = out / f"montage-{b.name}-{m}.png"
                plot_montage(b, m, path)
                print(path)
        return 0
    if args.markdown:
        print(montage_table(protocols, boards if args.board else None))
        return 0
    for b in boards:
        for m in b.montage_names():
            spec = b.montage_spec(m)
            fits = [fit_protocol(p, b, m) for p in protocols]
            refs = {}
            for fit in fits:
                refs.setdefault(fit.reference_used or "does not fit", []).append(fit.protocol.name)
            print(f"{b.name:<14s} {m:<8s} {' '.join(spec.channels)}")
            if spec.description and m != "default":
                print(f"{'':23s}{spec.description}")
            for ref, names in refs.items():
                print(f"{'':23s}{ref}: {', '.join(names)}")
    return 0


def cmd_session(args) -> int:
    from .live.session import (
        build_session,
        finish_session,
        has_display,
        open_source,
        parse_channel_map,
        print_summary,
    )
    from .protocol.schema import load_protocol
    from .recording.writer import check_participant_code

    # codes first: a code EDF/BDF or a file system cannot carry is refused before anything opens or records
    for code in (args.participant, args.partner):
        if code is not None:
            check_participant_code(code)
    protocol = load_protocol(resolve_protocol(args.protocol))
    from .ui.stimuli import check_protocol_stimuli

    check_protocol_stimuli(protocol)  # a typo'd stimulus is a one-line error now, not a blank block later
    if args.seconds_scale <= 0:
        raise NeurofeedError(f"--seconds-scale must be > 0, not {args.seconds_scale}.")
    if args.partner or args.partner_board or args.partner_lsl_name or protocol.dyad.enabled:
        from .dyad.session import cmd_dyad_session

        return cmd_dyad_session(args, protocol, _board(args))
    montage = _protocol_montage(protocol, _board(args), args.montage)
    source = open_source(_board(args), board_id=args.board_id, serial_port=args.serial_port,
                         mac_address=args.mac_address, file=args.file, lsl_name=args.lsl_name,
                         lsl_type=args.lsl_type, channel_map=parse_channel_map(args.channel_map),
                         protocol=protocol, seconds_scale=args.seconds_scale, montage=montage,
                         line_freq=args.line_freq, assume_uv=args.assume_uv)
    check = None
    from .hardware.sources.lsl import LSLSource

    headset = bool(getattr(getattr(source, "config", None), "is_hardware", False)) or isinstance(source, LSLSource)
    if args.check if args.check is not None else headset:
        # the signal check is the session's first screen: offsets, mains, RMS, railed/flat per channel,
        # before the recording starts (a failing channel is named with what to do)
        from .hardware.signal_check import print_check, session_check

        print("Signal check (a few seconds; --no-check skips it) ...", flush=True)
        check = session_check(source, protocol)
        print_check(check)
    window = not args.headless and (args.display == "window" or (args.display == "auto" and has_display()))
    # [display] Qt aborts the process when its platform plugin cannot load: check first, fall back
    if window:
        from .ui.display import windows_problem

        problem = windows_problem()
        if problem:
            print(f"neurofeed: {problem} Showing the terminal view.", file=sys.stderr)
            window = False
    # [/display]
    from .hardware.signal_check import confirm_start

    # a channel marked FAIL: the operator confirms (dialog, terminal) or passed --force; nothing is recorded before
    from .ui.display import ask_start_anyway

    if not confirm_start(check, force=args.force, window=window, ask_window=ask_start_anyway):
        print("neurofeed: not started: fix the channels marked FAIL and start again (nothing was recorded).",
              file=sys.stderr)
        return 1
    pipeline, recorder = build_session(source, protocol, args.participant, args.out, args.seconds_scale,
                                       record=not args.no_record, lsl=not args.no_lsl, busy_poll=args.busy_poll,
                                       montage=montage, yoke_from=args.yoke_from, blind_key=args.blind_key,
                                       lsl_name=args.lsl_prefix, lsl_notes=args.lsl_notes)
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
    done = {}

    def finish():  # once: at the windows' end screen, else below
        if "summary" not in done:
            done["summary"] = finish_session(pipeline, recorder)
        return done["summary"]

    try:
        if window:
            from .ui.display import run_windows

            close_after = args.close_after if args.close_after is not None else (None if sys.stdin.isatty() else 10.0)
            run_windows(pipeline, participant_screen=args.participant_screen, check=check, finish=finish,
                        close_after_s=close_after)
        else:
            from .ui.terminal import TerminalView

            pipeline.start()
            try:
                TerminalView(pipeline).run_until_done()
            except KeyboardInterrupt:
                pass
            pipeline.stop("session complete" if pipeline.engine.finished else "interrupted (Ctrl-C)")
    finally:
        pipeline.stop()
        summary = finish()
    print_summary(summary)
    if pipeline.error is not None:
        if isinstance(pipeline.error, NeurofeedError):
            raise pipeline.error
        raise NeurofeedError(f"the session stopped on an error: {pipeline.error}")
    if pipeline.processor.baseline_refused:  # ended cleanly (recording closed), but without a baseline
        raise NeurofeedError(pipeline.processor.baseline_refused)
    return 0


def cmd_check(args) -> int:
    from .hardware.signal_check import print_check, run_check
    from .live.session import open_source, parse_channel_map
    from .protocol.schema import load_protocol

    protocol = load_protocol(args.protocol)
    board = args.board
    if board is None and not (args.board_id or args.lsl_name or args.lsl_type):
        raise NeurofeedError("neurofeed check needs a board: name it with --board (e.g. --board cyton "
                             "--serial-port /dev/ttyUSB0, or --board simulated), --board-id, or --lsl-name.")
    script = None
    if board == "simulated":
        from .hardware.sources.simulated import SimulationScript

        # the simulated participant follows the check's instructions: 0.5 s settling + 4 s measured,
        # then blinks in the blink window and a clench in the jaw window
        t0 = 0.5 + args.seconds
        script = SimulationScript(mu_factor=[], emg=[(t0 + 6.0, t0 + 8.0)], blinks=[t0 + 1.5, t0 + 3.0])
    source = open_source(board, board_id=args.board_id, serial_port=args.serial_port, mac_address=args.mac_address,
                         file=args.file, lsl_name=args.lsl_name, lsl_type=args.lsl_type,
                         channel_map=parse_channel_map(args.channel_map), protocol=protocol, script=script,
                         montage=_protocol_montage(protocol, board, args.montage), line_freq=args.line_freq,
                         assume_uv=args.assume_uv)
    tests = args.artifact_tests
    if tests is None:
        tests = board == "simulated" or sys.stdin.isatty()
    result = run_check(source, protocol, seconds=args.seconds, artifact_tests=tests, impedance=not args.no_impedance)
    print_check(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0 if result["ok"] else 1

def cmd_emulate(args) -> int:
    import signal as _signal
    import threading

    from .devtools.cyton_emulator import CytonEmulator, from_edf, montage_names

    if args.board == "muse-lsl":
        from .devtools.muse_emulator import run_muse_lsl

        return run_muse_lsl(args)
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
        from .hardware.sources.simulated import MuSimulator

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
    from .analysis.replay import read_label_map, replay_many
    from .hardware.sources.edf import parse_channel_types

    if args.jobs < 1:
        raise NeurofeedError(f"--jobs must be 1 or more, not {args.jobs}.")
    from .dyad.replay import is_dyad_folder, print_dyad_replay, replay_dyad

    dyads = [f for f in args.files if is_dyad_folder(f)]
    exact = True
    for f in dyads:  # both journals bit-exact, the coupling recomputed into <out>/<dyad folder name>/dyad.tsv
        res = replay_dyad(f, Path(args.out) / Path(f).resolve().name)
        print_dyad_replay(f, res)
        exact &= all(p["bit_exact"] for p in res["people"].values())
    args.files = [f for f in args.files if f not in dyads]
    if not args.files:
        return 0 if exact else 1
    replay_many(args.files, protocol=resolve_protocol(args.protocol) if args.protocol else None, speed=args.speed,
                baseline_label=args.baseline_label, out=args.out, jobs=args.jobs, display=args.display,
                mode=args.mode, scheduler=args.scheduler,
                tls={"ca_file": args.tls_ca_file, "cert": args.tls_cert, "key": args.tls_key},
                channel_types=parse_channel_types(args.channel_types),
                label_map=read_label_map(args.label_map) if args.label_map else None, line_hz=args.line_freq,
                baseline_from=args.baseline_from)
    return 0 if exact else 1


def cmd_recover(args) -> int:
    from .recording.writer import recover

    out = recover(args.path)
    print(f"recovered: {out}")
    return 0


def cmd_report(args) -> int:
    from .analysis.report import make_report

    if (Path(args.path) / "dyad.json").exists():  # two people's sessions: the dyad report
        from .dyad.report import dyad_report

        print(f"report: {dyad_report(Path(args.path), args.out)}")
        return 0
    out = make_report(args.path, args.out, epochs_out=args.epochs_out, unblind=args.unblind,
                      erd_baseline=args.erd_baseline)
    from .recording.journal import is_journal

    if is_journal(args.path):  # the arm of a trial session
        from .analysis.replay import read_journal_header
        from .live.sham import arm_of

        print(f"arm: {arm_of(read_journal_header(args.path), args.unblind, args.path)}")
    print(f"report: {out}")
    return 0


def cmd_export_bids(args) -> int:
    from .analysis.report import export_bids

    out = export_bids(args.path, args.root, args.task)
    print(f"BIDS: {out}")
    return 0


def cmd_screenshot(args) -> int:
    from .ui.display import screenshot

    for out in screenshot(resolve_protocol(args.protocol), args.out, args.seconds):
        print(out)
    return 0


def cmd_bench(args) -> int:
    if args.bench_command != "latency":
        print("usage: neurofeed bench latency ...", file=sys.stderr)
        return 2
    from .devtools.bench import electrode_to_feedback_benchmark, latency_benchmark, print_e2e, print_latency

    args.board, args.protocol = _board(args), resolve_protocol(args.protocol)
    if args.board is None:  # the default is electrode -> painted bar, on real EEG and on the step loop
        kinds = ("eeg", "scripted") if args.signal == "both" else (args.signal,)
        runs = {}
        for kind in kinds:
            runs[kind] = electrode_to_feedback_benchmark(argparse.Namespace(**{**vars(args), "signal": kind}))
            print_e2e(runs[kind])
        result = runs[kinds[0]] if len(kinds) == 1 else {"runs": runs}
    else:
        result = latency_benchmark(args)
        print_latency(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


COMMANDS = {"session": cmd_session, "check": cmd_check, "boards": cmd_boards, "protocols": cmd_protocols,
            "montages": cmd_montages,
            "replay": cmd_replay,
            "recover": cmd_recover, "emulate": cmd_emulate, "report": cmd_report, "export-bids": cmd_export_bids,
            "screenshot": cmd_screenshot, "bench": cmd_bench}


def main(argv=None) -> int:
    """The ``neurofeed`` command; returns its exit status. A reader that closes stdout early
    (``neurofeed protocols list | head``) ends it quietly with status 141 (:func:`_closed_pipe`)."""
    try:
        return _main(argv)
    except BrokenPipeError:
        return _closed_pipe()


def _main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit:  # --help, --version, a usage error: what argparse printed meets a closed pipe here
        sys.stdout.flush()
        raise
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="neurofeed: %(levelname)s: %(message)s")
    if not args.command:
        parser.print_help()
        return 2
    try:
        rc = COMMANDS[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, not at the interpreter's exit
        return rc
    except NeurofeedError as err:
        print(f"neurofeed: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("neurofeed: interrupted", file=sys.stderr)
        return 130


#: exit status of a command whose reader went away (`neurofeed protocols list | head`): 128 + SIGPIPE
EXIT_CLOSED_PIPE = 141


def _closed_pipe() -> int:
    """The reader of stdout closed the pipe: stop quietly, as a shell tool does. Python's flush of
    stdout at exit would raise again, so stdout is pointed at devnull first (the Python docs'
    recipe, "Note on SIGPIPE" in the signal module)."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout is not a file (a test's StringIO): nothing to quiet
        pass
    return EXIT_CLOSED_PIPE


if __name__ == "__main__":
    sys.exit(main())
