"""``neurofeed boards``, ``protocols list|check`` and ``montages``: the protocol library, the board
configs and how each protocol fits each board's montages (no device is opened)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..core.errors import NeurofeedError
from ..protocol.schema import resolve_protocol


def register_boards(sub) -> None:
    """Add ``boards`` to the sub-command parsers ``sub``."""
    b = sub.add_parser("boards", help="list the board configs",
                       description="List the board configs (configs/, overlaid by the user's boards folder and "
                                   "$NEUROFEED_CONFIGS) and where each comes from.")
    b.set_defaults(handler=cmd_boards)


def register_protocols(sub) -> None:
    """Add ``protocols list`` and ``protocols check`` to the sub-command parsers ``sub``."""
    pr = sub.add_parser("protocols", help="list or check protocol files", description="List or validate protocols.")
    pr.set_defaults(handler=cmd_protocols)
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


def register_montages(sub) -> None:
    """Add ``montages`` to the sub-command parsers ``sub``."""
    mo = sub.add_parser("montages", help="list each board's montages and the reference every protocol uses there",
                        description="List the board configs' montages (where each electrode sits) and, per shipped "
                                    "protocol, the reference it will use on each.")
    mo.add_argument("--board", help="only this board")
    mo.add_argument("--markdown", action="store_true", help="print a Markdown table (board, montage, channels, "
                                                            "reference per protocol)")
    mo.add_argument("--figure", metavar="DIR", help="write a placement figure per montage to "
                                                   "DIR/montage-<board>-<name>.png")
    mo.set_defaults(handler=cmd_montages)


def cmd_boards(args) -> int:
    """``neurofeed boards``: one line per board config."""
    from ..hardware.boards import list_boards

    for b in list_boards():
        print(f"{b.name:<14s} {str(b.board_id):<22s} {b.description} [montages: {', '.join(b.montage_names())}; "
              f"mains {b.line_hz:g} Hz] from {b.origin}")
    return 0


def cmd_protocols(args) -> int:
    """``neurofeed protocols list|check``."""
    if args.protocols_command == "list":
        return _list_protocols(args.folder)
    if args.protocols_command == "check":
        return validate_protocol_files(args.files, args.board, args.montage)
    print("usage: neurofeed protocols {list,check}", file=sys.stderr)
    return 2


def _list_protocols(folder) -> int:
    """``protocols list``: name, condition, direction, minutes and origin of each protocol of ``folder``
    (default: the user's protocols, then the shipped library)."""
    from ..core.library import library_files
    from ..protocol.schema import load_protocol

    if folder:
        files = [(f, str(Path(folder))) for f in sorted(Path(folder).glob("*.toml"))]
    else:
        files = [(f.path, f.where) for f in library_files("protocols").values()]
    print(f"{'name':<36s} {'condition':<40s} {'direction':<9s} {'minutes':>7s}  from")
    for f, where in files:
        p = load_protocol(f)
        print(f"{p.name:<36s} {p.protocol.condition[:40]:<40s} {p.protocol.direction:<9s} "
              f"{p.total_duration_s() / 60:7.1f}  {where}")
    return 0


BAR_BUDGET_S = 0.05  # the participant's budget, electrode -> painted bar


def _bar_delay_text(p) -> str:
    """The protocol's bar delay, electrode -> painted bar, as ``protocols check`` prints it: the
    estimator's typical effective delay on real EEG plus each [feedback] smoother."""
    from ..dsp.accuracy import typical_effective_delay_s

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


def validate_protocol_files(files, board=None, montage=None) -> int:
    """``protocols check``: validate each file and, with a board, its fit to the board's montage(s).

    A named board and montage: every protocol must fit (exit 2 otherwise). ``--board all`` or
    ``--montage all``: each combination gets a line (``ok`` or ``--`` with the reason); a protocol
    fails only if it fits none of them.
    """
    if montage and not board:
        raise NeurofeedError("--montage needs --board (e.g. --board cyton --montage mu).")
    every = board == "all" or montage == "all"
    combos = _board_montages(board, montage, every)
    bad = 0
    for f in files:
        p = _load_valid_protocol(f)
        if p is None:
            bad += 1
        elif not combos:
            print(f"ok   {f}: {p.name} ({p.protocol.direction}, {p.total_duration_s() / 60:.1f} min); {_bar_delay_text(p)}")
        elif not _print_montage_fits(p, combos, every):
            bad += 1
    return 2 if bad else 0


def _board_montages(board, montage, every: bool) -> list:
    """The (board config, montage name) pairs ``protocols check --board/--montage`` tests; an unknown
    montage name is refused here with one line listing the board's montages."""
    from ..hardware.boards import get_board, list_boards

    boards = (list_boards() if board == "all" else [get_board(board)]) if board else []
    combos = [(b, m) for b in boards for m in (b.montage_names() if every and montage in (None, "all") else [montage])]
    for b, m in combos:
        b.montage_spec(m)
    return combos


def _load_valid_protocol(f):
    """The protocol of file or name ``f`` once its stimuli, declared montages and baseline hold; None
    (after a ``FAIL`` line on stderr) when it does not."""
    from ..hardware.montages import check_declared_montages
    from ..protocol.schema import baseline_shortfall, load_protocol
    from ..ui.stimuli import check_protocol_stimuli

    try:
        p = load_protocol(resolve_protocol(f))
        check_protocol_stimuli(p)
        check_declared_montages(p)
        short = baseline_shortfall(p)
        if short:
            raise NeurofeedError(f"{p.path}: {short}.")
    except NeurofeedError as err:
        print(f"FAIL {err}", file=sys.stderr)
        return None
    return p


def _print_montage_fits(p, combos, every: bool) -> bool:
    """Print how protocol ``p`` fits each (board, montage) of ``combos``; True when it fits at least one."""
    from ..hardware.boards import get_board
    from ..hardware.montages import advice, fit_protocol

    fits = [fit_protocol(p, b, m if (m or every) else p.signal.montage.get(b.name)) for b, m in combos]
    for fit in fits:
        if fit.ok:
            print(f"ok   {fit.line()}")
        elif every:
            print(f"--   {fit.line()}")
        else:
            print(f"FAIL {p.path}: {fit.line()}; {advice(p, get_board(fit.board), fit.montage)}.", file=sys.stderr)
    if any(fit.ok for fit in fits):
        return True
    if every:
        print(f"FAIL {p.path}: fits none of the {len(fits)} board montages checked.", file=sys.stderr)
    return False


def cmd_montages(args) -> int:
    """``neurofeed montages``: each board's montages and the reference every shipped protocol uses there
    (``--markdown``: as a table; ``--figure DIR``: a placement figure per montage)."""
    from ..hardware.boards import get_board, list_boards
    from ..hardware.montages import montage_table, plot_montage
    from ..protocol.schema import PROTOCOL_DIR, load_protocol

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
            _print_montage_references(b, m, protocols)
    return 0


def _print_montage_references(b, m: str, protocols) -> None:
    """One montage of board config ``b``: its channels, its description, the reference each protocol uses."""
    from ..hardware.montages import fit_protocol

    spec = b.montage_spec(m)
    refs = {}
    for fit in (fit_protocol(p, b, m) for p in protocols):
        refs.setdefault(fit.reference_used or "does not fit", []).append(fit.protocol.name)
    print(f"{b.name:<14s} {m:<8s} {' '.join(spec.channels)}")
    if spec.description and m != "default":
        print(f"{'':23s}{spec.description}")
    for ref, names in refs.items():
        print(f"{'':23s}{ref}: {', '.join(names)}")
