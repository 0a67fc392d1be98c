"""``neurofeed replay``, ``report`` and ``export-bids``: recorded sessions and files through the live
pipeline, their HTML reports, and BIDS."""

from __future__ import annotations

from pathlib import Path

from ..core.errors import NeurofeedError
from ..protocol.schema import resolve_protocol


def register_replay(sub) -> None:
    """Add ``replay`` to the sub-command parsers ``sub``."""
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
    r.set_defaults(handler=cmd_replay)


def register_report(sub) -> None:
    """Add ``report`` to the sub-command parsers ``sub``."""
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
    rp.set_defaults(handler=cmd_report)


def register_export_bids(sub) -> None:
    """Add ``export-bids`` to the sub-command parsers ``sub``."""
    eb = sub.add_parser("export-bids", help="write a session into a BIDS dataset (mne-bids)")
    eb.add_argument("path", help="the session folder")
    eb.add_argument("--root", required=True, help="BIDS root folder")
    eb.add_argument("--task", default="neurofeedback")
    eb.set_defaults(handler=cmd_export_bids)


def cmd_replay(args) -> int:
    """``neurofeed replay``: dyad folders first (both journals bit-exact, the coupling recomputed), then
    the other files through :func:`~neurofeed.analysis.replay.replay_many`; exit 1 when a dyad replay is not
    bit-exact."""
    from ..analysis.replay import read_label_map, replay_many
    from ..hardware.sources.edf import parse_channel_types

    if args.jobs < 1:
        raise NeurofeedError(f"--jobs must be 1 or more, not {args.jobs}.")
    from ..dyad.replay import is_dyad_folder, print_dyad_replay, replay_dyad

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


def cmd_report(args) -> int:
    """``neurofeed report``: the dyad report of a dyad folder, else the HTML report of a session, a replay
    or a participant folder (and a trial session's arm)."""
    from ..analysis.report import make_report

    if (Path(args.path) / "dyad.json").exists():  # two people's sessions: the dyad report
        from ..dyad.report import dyad_report

        print(f"report: {dyad_report(Path(args.path), args.out)}")
        return 0
    out = make_report(args.path, args.out, epochs_out=args.epochs_out, unblind=args.unblind,
                      erd_baseline=args.erd_baseline)
    from ..recording.journal import is_journal

    if is_journal(args.path):  # the arm of a trial session
        from ..analysis.replay import read_journal_header
        from ..live.sham import arm_of

        print(f"arm: {arm_of(read_journal_header(args.path), args.unblind, args.path)}")
    print(f"report: {out}")
    return 0


def cmd_export_bids(args) -> int:
    """``neurofeed export-bids``: write a session into a BIDS dataset."""
    from ..analysis.report import export_bids

    out = export_bids(args.path, args.root, args.task)
    print(f"BIDS: {out}")
    return 0
