"""``neurofeed bench``, ``emulate`` and ``screenshot``: development tools (benchmarks, emulated
headsets, pictures of the views for the documentation)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..core.errors import NeurofeedError
from ..protocol.schema import resolve_protocol
from .common import add_source_args, board_of


def register_screenshot(sub) -> None:
    """Add ``screenshot`` to the sub-command parsers ``sub``."""
    sc = sub.add_parser("screenshot", help="render both views offscreen to PNG")
    sc.add_argument("--protocol", default="demo")
    sc.add_argument("--out", required=True, help="PNG path (two files: *-participant.png, *-console.png)")
    sc.add_argument("--seconds", type=float, default=14.5, help="simulated seconds before the picture")
    sc.set_defaults(handler=cmd_screenshot)


def register_bench(sub) -> None:
    """Add ``bench latency`` to the sub-command parsers ``sub``."""
    b = sub.add_parser("bench", help="benchmarks")
    bs = b.add_subparsers(dest="bench_command", metavar="WHAT")
    bl = bs.add_parser("latency", help="electrode-to-feedback latency of the live pipeline",
                       description="Without --board: electrode -> feedback through an emulated Cyton read by "
                                   "BrainFlow's own driver, timed at the LSL feedback outlet against the true "
                                   "envelope. With --board: the compute figures of the live pipeline on that board.")
    add_source_args(bl, None)
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
    b.set_defaults(handler=cmd_bench)


def register_emulate(sub) -> None:
    """Add ``emulate`` to the sub-command parsers ``sub``."""
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
    em.set_defaults(handler=cmd_emulate)


def cmd_screenshot(args) -> int:
    """``neurofeed screenshot``: render both views offscreen to PNG files."""
    from ..ui.display import screenshot

    for out in screenshot(resolve_protocol(args.protocol), args.out, args.seconds):
        print(out)
    return 0


def cmd_bench(args) -> int:
    """``neurofeed bench latency``: electrode -> feedback through an emulated Cyton (no ``--board``), else
    the compute figures of the live pipeline on that board."""
    if args.bench_command != "latency":
        print("usage: neurofeed bench latency ...", file=sys.stderr)
        return 2
    from ..devtools.bench import electrode_to_feedback_benchmark, latency_benchmark, print_e2e, print_latency

    args.board, args.protocol = board_of(args), resolve_protocol(args.protocol)
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


def cmd_emulate(args) -> int:
    """``neurofeed emulate``: an OpenBCI Cyton (+ Daisy) on a pseudo-terminal until Ctrl-C or SIGTERM, or
    a Muse on LSL (``muse-lsl``)."""
    import signal as _signal
    import threading

    from ..devtools.cyton_emulator import CytonEmulator, from_edf, montage_names

    if args.board == "muse-lsl":
        from ..devtools.muse_emulator import run_muse_lsl

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
        from ..hardware.sources.simulated import MuSimulator

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
