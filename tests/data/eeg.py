"""The real EEG the test suite reads, unpacked on first use.

The repository carries EEGMMIDB runs as xz-compressed copies of the original EDF files
(``tests/data/eegmmidb-S001/*.edf.xz``, byte-identical once unpacked; see README.md here). The
first use unpacks each beside itself (``*.edf``, ignored by git), written to a temporary name
and renamed, so two test processes starting at once never read half a file.
"""

from __future__ import annotations

import lzma
import os
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
EEGMMIDB_XZ = HERE / "eegmmidb-S001"


def unpacked(folder: Path = EEGMMIDB_XZ) -> Path:
    """``folder`` with every ``*.edf.xz`` in it unpacked beside itself (if not already); returns ``folder``."""
    for packed in sorted(Path(folder).glob("*.edf.xz")):
        edf = packed.with_suffix("")
        if edf.exists() and edf.stat().st_mtime >= packed.stat().st_mtime:
            continue
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{edf.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(lzma.decompress(packed.read_bytes()))
            os.replace(tmp, edf)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return Path(folder)
