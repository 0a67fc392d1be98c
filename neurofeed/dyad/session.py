"""A dyad session: two people, two sources, two pipelines, one session folder, their coupling.

``neurofeed session --board B --partner-board B2 --participant P01 --partner P02 --protocol
dyadic-resonance`` runs each person's source through its own
:class:`~neurofeed.live.pipeline.Pipeline` (own chain, baseline, SI and recording) and a
:class:`~neurofeed.dyad.monitor.DyadMonitor` as a sink of both. The folder::

    <out>/<P01>+<P02>/<stamp>_<protocol>/
        P01/        a normal session folder (journal, sidecar, BDF) of the participant ("a")
        P02/        the same for the partner ("b")
        dyad.tsv    t_s, AEC, PLV, coupling index, SI of each, every [dyad] update_s
        dyad.json   both codes and folders, the clock alignment, the coupling summary and (the
                    simulated partner mode) the scripted coupling: the ground truth
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import NeurofeedError
from ..protocol.schema import Protocol
from .monitor import DyadMonitor, SharedMuDrive, alternating_windows, write_dyad_sidecar

ROLES = ("a", "b")
PARTNER_LAG_RAD = 0.5  # simulated partner mode: the partner's mu lags by this phase in coupled windows


def dyad_folder(out_root, codes, protocol_name: str) -> Path:
    """``out_root/<a>+<b>/<YYYYmmdd-HHMMSS>_<protocol>``."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(out_root) / f"{codes[0]}+{codes[1]}" / f"{stamp}_{protocol_name}"


def check_dyad_sources(source_a, source_b, names=("--board", "--partner-board")) -> None:
    """One-line errors where the two sources cannot be put on one sample timeline."""
    if float(source_a.sfreq) != float(source_b.sfreq):
        raise NeurofeedError(f"the two boards' sampling rates differ: {names[0]} {source_a.name} gives "
                             f"{source_a.sfreq:g} Hz, {names[1]} {source_b.name} gives {source_b.sfreq:g} Hz; a dyad "
                             f"needs one rate (two boards of the same kind, or the same --board for both).")


def simulated_partner_drive(source_a, source_b, protocol: Protocol, seconds_scale: float = 1.0,
                            seed: int = 0) -> SharedMuDrive | None:
    """The simulated headsets' partner mode: both follow one shared mu rhythm in alternate windows.

    Coupling is on in alternate ``[dyad] simulated_period_s`` windows (off first), in seconds of
    each simulator's own signal; the partner's phase lags by :data:`PARTNER_LAG_RAD`. Returns
    None unless both sources are simulated.
    """
    sims = [getattr(s, "sim", None) for s in (source_a, source_b)]
    if any(s is None or not hasattr(s, "drive") for s in sims):
        return None
    duration = protocol.total_duration_s() * seconds_scale + 60.0
    drive = SharedMuDrive(source_a.sfreq, duration, alternating_windows(duration, protocol.dyad.simulated_period_s),
                          seed=seed)
    drive.attach(sims[0], 0.0)
    drive.attach(sims[1], PARTNER_LAG_RAD)
    return drive


@dataclass(eq=False)  # a running session: compared by identity
class DyadSession:
    """Two people's pipelines and their coupling monitor, run and finished together.

    Attributes
    ----------
    codes : tuple of str
        Participant codes of person "a" (the participant) and "b" (the partner).
    pipelines : dict
        ``{"a": Pipeline, "b": Pipeline}``.
    recorders : dict
        ``{"a": Recorder | None, "b": ...}``.
    monitor : DyadMonitor
        Its ``latest`` (:class:`~neurofeed.dyad.monitor.DyadState`) is what the views show.
    folder : Path or None
        The dyad session folder (None when not recording).
    protocol : Protocol
        The dyad protocol both people run.
    drive : SharedMuDrive or None
        The simulated coupling script (ground truth), if any.
    seconds_scale : float
        The compression of the protocol's block durations (tests, demos).
    """

    codes: tuple
    pipelines: dict
    recorders: dict
    monitor: DyadMonitor
    folder: Path | None
    protocol: Protocol
    drive: SharedMuDrive | None = None
    seconds_scale: float = 1.0

    def __post_init__(self):
        self.codes = tuple(self.codes)

    @property
    def running(self) -> bool:
        """True while the dyad session runs: until both people's schedules are done, or either
        pipeline stops otherwise (an error, a lost source, the operator), which ends it for both."""
        pipes = self.pipelines.values()
        ended_early = any(not p.running and p.t0_ns and not p.engine.finished for p in pipes)  # started, then stopped
        return any(p.running for p in pipes) and self.error is None and not ended_early

    @property
    def error(self):
        """The first error of either pipeline (None if none)."""
        return next((p.error for p in self.pipelines.values() if p.error is not None), None)

    def start(self) -> None:
        """Start both people's pipelines (sources and acquisition threads)."""
        for p in self.pipelines.values():
            p.start()

    def stop(self, why: str = "stopped by operator") -> None:
        """Stop both pipelines (idempotent); each records why."""
        for p in self.pipelines.values():
            p.stop(why)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until either person's session ends by itself; True if one did within ``timeout``."""
        end = None if timeout is None else time.monotonic() + timeout
        while self.running:
            if end is not None and time.monotonic() > end:
                return False
            next(iter(self.pipelines.values())).wait(0.05)
        return True

    def finish(self) -> dict:
        """Stop, close both recordings (sidecars + BDF), write ``dyad.json``; returns the summary."""
        from ..live.session import finish_session

        why = "session complete" if all(p.engine.finished for p in self.pipelines.values()) else "partner stopped"
        self.stop(why)
        people = {}
        for role, code in zip(ROLES, self.codes):
            s = finish_session(self.pipelines[role], self.recorders[role])
            people[role] = s
        info = {"participant": self.codes[0], "partner": self.codes[1], "protocol": self.protocol.name,
                "roles": {"a": self.codes[0], "b": self.codes[1]},
                "recordings": {r: (Path(self.recorders[r].folder).name if self.recorders[r] else None) for r in ROLES},
                "sfreq": self.monitor.sfreq, "band_hz": list(self.monitor.band_hz), "window_s": self.monitor.window_s,
                "update_s": self.monitor.every / self.monitor.sfreq, "seconds_scale": self.seconds_scale,
                "measures": "AEC: correlation of log mu envelopes; PLV: mu phase locking; coupling = mean(max(AEC,0), "
                            "PLV); each over window_s, of the mean of each person's referenced targets",
                "alignment": self.monitor.alignment(), "coupling": self.monitor.summary(),
                "ground_truth": None}
        if self.drive is not None:
            info["ground_truth"] = {"coupled_windows_s": self.drive.windows, "partner_lag_rad": PARTNER_LAG_RAD,
                                    "time": "seconds of each simulator's signal from its first sample"}
        if self.folder is not None:
            write_dyad_sidecar(self.folder, info)
        return {"people": people, "dyad": info, "folder": str(self.folder) if self.folder else None}


def build_dyad_session(source_a, source_b, protocol: Protocol, codes, out_root="recordings", seconds_scale=1.0,
                       record=True, lsl=True, busy_poll=False, line_freq=None, montages=(None, None),
                       drive: SharedMuDrive | None = None, lsl_prefix: str = "neurofeed") -> DyadSession:
    """Wire two sources into one :class:`DyadSession` (not started).

    Parameters
    ----------
    source_a, source_b : Source
        The participant's and the partner's source (same sampling rate).
    protocol : Protocol
        A dyad protocol (``[dyad] enabled = true``); each person runs it with their own baseline.
    codes : (str, str)
        Participant codes of the two people (different).
    drive : SharedMuDrive, optional
        The simulated coupling (recorded in ``dyad.json`` as ground truth).
    """
    from ..live.session import build_session
    from ..recording.writer import check_participant_code

    a, b = (check_participant_code(c) for c in codes)
    if a == b:
        raise NeurofeedError(f"--participant and --partner are both {a}; a dyad needs two participant codes.")
    if not protocol.dyad.enabled:
        raise NeurofeedError(f"protocol {protocol.name} is for one person; a dyad needs a protocol with [dyad] "
                             f"enabled = true (e.g. --protocol dyadic-resonance).")
    check_dyad_sources(source_a, source_b)
    folder = None
    if record:
        from ..recording.writer import create_session_folder

        try:  # exclusively, as a single session's: two dyads started in the same second get two folders
            folder = create_session_folder(dyad_folder(out_root, (a, b), protocol.name))
        except OSError as err:
            raise NeurofeedError(f"Cannot write recordings to {out_root}: {err.strerror or err}; choose a writable "
                                 f"folder with --out.") from None
    d = protocol.dyad
    monitor = DyadMonitor(source_a.sfreq, tuple(protocol.signal.band_hz), d.window_s, out=folder,
                          update_every_s=d.update_s)
    pipelines, recorders = {}, {}
    for role, code, src, montage in zip(ROLES, (a, b), (source_a, source_b), montages):
        pipe, rec = build_session(src, protocol, code, out_root, seconds_scale, record=record, lsl=lsl,
                                  busy_poll=busy_poll, line_freq=line_freq, montage=montage,
                                  folder=(folder / code) if folder is not None else None, lsl_name=f"{lsl_prefix}-{code}")
        pipe.sinks.append(monitor.sink(role, pipe.processor.chain))
        pipelines[role], recorders[role] = pipe, rec
    return DyadSession((a, b), pipelines, recorders, monitor, folder, protocol, drive, seconds_scale)


def open_dyad_sources(args, protocol: Protocol, board):
    """The participant's and the partner's sources from the command line (not started)."""
    from ..live.session import open_source, parse_channel_map

    if not args.partner:
        raise NeurofeedError(f"protocol {protocol.name} is for two people: add --partner CODE and --partner-board B "
                             f"(e.g. --partner P02 --partner-board simulated).")
    partner_board = args.partner_board or ("lsl" if args.partner_lsl_name else None)
    if partner_board is None:
        raise NeurofeedError("a dyad session needs the partner's headset: --partner-board B (e.g. simulated, cyton "
                             "with --partner-serial-port) or --partner-lsl-name NAME.")
    common = dict(protocol=protocol, seconds_scale=args.seconds_scale, line_freq=args.line_freq)
    source_a = open_source(board, board_id=args.board_id, serial_port=args.serial_port,
                           mac_address=args.mac_address, file=args.file, lsl_name=args.lsl_name,
                           lsl_type=args.lsl_type, channel_map=parse_channel_map(args.channel_map),
                           montage=args.montage, **common)
    source_b = open_source(partner_board, serial_port=args.partner_serial_port, mac_address=args.partner_mac_address,
                           lsl_name=args.partner_lsl_name, montage=args.partner_montage or args.montage, **common)
    return source_a, source_b


def cmd_dyad_session(args, protocol: Protocol, board) -> int:
    """The body of ``neurofeed session`` for two people."""
    from .. import __version__
    from ..live.session import has_display, print_summary

    if args.yoke_from or args.blind_key:
        raise NeurofeedError("--yoke-from/--blind-key apply to one person's session, not to a dyad.")
    if not protocol.dyad.enabled:
        raise NeurofeedError(f"protocol {protocol.name} is for one person; a dyad needs a protocol with [dyad] "
                             f"enabled = true (e.g. --protocol dyadic-resonance).")
    source_a, source_b = open_dyad_sources(args, protocol, board)
    check_dyad_sources(source_a, source_b)
    drive = simulated_partner_drive(source_a, source_b, protocol, args.seconds_scale)
    session = build_dyad_session(source_a, source_b, protocol, (args.participant, args.partner), args.out,
                                 args.seconds_scale, record=not args.no_record, lsl=not args.no_lsl,
                                 busy_poll=args.busy_poll, line_freq=args.line_freq,
                                 montages=(args.montage, args.partner_montage or args.montage), drive=drive,
                                 lsl_prefix=args.lsl_prefix)
    print(f"neurofeed {__version__}: {protocol.name} for the dyad {args.participant} ({source_a.name}) + "
          f"{args.partner} ({source_b.name}), {source_a.sfreq:g} Hz. Research tool, not a medical device.")
    if drive is not None:
        print(f"simulated partner mode: coupling scripted on in alternate {protocol.dyad.simulated_period_s:g}-s windows")
    window = not args.headless and (args.display == "window" or (args.display == "auto" and has_display()))
    try:
        if window:
            from .view import run_dyad_windows

            run_dyad_windows(session, participant_screen=args.participant_screen)
        else:
            from .view import DyadTerminalView

            session.start()
            try:
                DyadTerminalView(session).run_until_done()
            except KeyboardInterrupt:
                session.stop("interrupted (Ctrl-C)")
    finally:
        summary = session.finish()
    for role, code in zip(ROLES, session.codes):
        print(f"\n{code}:", end="")
        print_summary(summary["people"][role])
    c = summary["dyad"]["coupling"]
    fmt = lambda v: "—" if v is None else f"{v:.2f}"  # noqa: E731
    print(f"\ncoupling: {c['updates']} updates, mean index {fmt(c['mean_coupling'])} (AEC {fmt(c['mean_aec'])}, "
          f"PLV {fmt(c['mean_plv'])})")
    if summary["folder"]:
        print(f"dyad recording: {summary['folder']}")
    err = session.error
    if err is not None:
        if isinstance(err, NeurofeedError):
            raise err
        raise NeurofeedError(f"the dyad session stopped on an error: {err}")
    return 0
