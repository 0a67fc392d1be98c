"""``neurofeed recover``: an interrupted session's journal into a BDF+ file."""

from __future__ import annotations


def register(sub) -> None:
    """Add ``recover`` to the sub-command parsers ``sub``."""
    rc = sub.add_parser("recover", help="turn an interrupted session's journal into a BDF+ file")
    rc.add_argument("path", help="the session folder")
    rc.set_defaults(handler=cmd_recover)


def cmd_recover(args) -> int:
    """``neurofeed recover``: turn an interrupted session's journal into a BDF+ file."""
    from ..recording.writer import recover

    out = recover(args.path)
    print(f"recovered: {out}")
    return 0
