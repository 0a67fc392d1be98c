"""User-facing errors: each is printed as one line by the CLI, with a non-zero exit."""


class NeurofeedError(Exception):
    """A problem with the user's input or environment (file, key, channel, value).

    The message is one line that names what is wrong and what would be right.
    """


class ProtocolError(NeurofeedError, ValueError):
    """A protocol file that does not validate; the message names the file and the key."""


class SourceError(NeurofeedError):
    """A data source that cannot be opened or read (board, serial port, stream, file)."""


class RecordingError(NeurofeedError):
    """A recording that cannot be written, read or recovered."""
