"""The real EEG the test suite reads, unpacked on first use.

The repository carries EEGMMIDB runs as xz-compressed copies of the original EDF files
(``tests/data/eegmmidb-S001/*.edf.xz``, byte-identical once unpacked; see README.md here). The
first use unpacks each beside itself (``*.edf``, ignored by git), written to a temporary name
and renamed, so two test processes starting at once never read half a file.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
EEGMMIDB_XZ = HERE / "eegmmidb-S001"


def unpacked(folder: Path = EEGMMIDB_XZ) -> Path:
    """``folder`` with every ``*.edf.xz`` in it unpacked beside itself (if not already); returns ``folder``."""
    from neurofeed.devtools.bench import unpack_xz

    for packed in sorted(Path(folder).glob("*.edf.xz")):
        unpack_xz(packed, packed.with_suffix(""))
    return Path(folder)
