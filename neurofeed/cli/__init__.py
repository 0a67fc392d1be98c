"""The ``neurofeed`` command and its sub-commands, one module per command family.

- :mod:`.session`: ``session`` (one person or a dyad)
- :mod:`.check`: ``check`` (the signal check before a session)
- :mod:`.protocols`: ``boards``, ``protocols list|check``, ``montages``
- :mod:`.replay`: ``replay``, ``report``, ``export-bids``
- :mod:`.recording`: ``recover``
- :mod:`.devtools`: ``screenshot``, ``bench``, ``emulate``

Each module registers its own sub-parsers (``register...(sub)``), with the command's function as the
``handler`` default; the commands import what they need when they run, so ``neurofeed --help`` loads
neither numpy nor Qt.

User errors end in one line on stderr (``neurofeed: error: ...``) and exit status 2, without
a traceback; anything already recorded stays on disk.
"""

from __future__ import annotations

import argparse
import logging
import sys

from .. import __version__
from ..core.errors import NeurofeedError
from . import check, devtools, protocols, recording, replay, session

#: the sub-parsers, in the order ``neurofeed --help`` lists them
REGISTER = (session.register, check.register, protocols.register_boards, protocols.register_protocols,
            protocols.register_montages, replay.register_replay, recording.register, replay.register_report,
            replay.register_export_bids, devtools.register_screenshot, devtools.register_bench,
            devtools.register_emulate)


def build_parser() -> argparse.ArgumentParser:
    """The ``neurofeed`` parser: the global options and every sub-command of :data:`REGISTER`."""
    parser = argparse.ArgumentParser(
        prog="neurofeed",
        description="Real-time EEG mu-rhythm neurofeedback (a research tool, not a medical device).",
        epilog="Start with: neurofeed session --board simulated --protocol demo --participant P01")
    parser.add_argument("--version", action="version", version=f"neurofeed {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in REGISTER:
        register(sub)
    return parser


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
        rc = args.handler(args)
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

