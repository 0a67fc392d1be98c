"""The repository stands alone: a fresh clone, with nothing beside it, carries what its tests read,
and a fast subset of the suite passes there."""

import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import ROOT

#: A fast subset that touches each thing a clone must carry: the real EEG (tests/data), the protocol
#: library and board configs (protocols/, configs/), the shipped stimuli, the LSL config handling.
SUBSET = ["tests/test_library.py",
          "tests/test_sources.py::test_file_source_reads_edf_with_normalised_names",
          "tests/test_montage.py::test_channel_map_works_for_files_and_never_renames_a_headband_electrode",
          "tests/test_stimuli.py::test_every_shipped_protocol_passes_check_and_every_stimulus_block_shows_its_stimuli",
          "tests/test_lsl_config.py::test_the_users_lsl_api_cfg_is_read_and_its_session_id_used"]


def test_nothing_in_tests_reads_beside_the_repository_and_tests_data_holds_what_they_name():
    # the suite and what it imports: no path climbs above the repository (ROOT.parent, parents[2+], "../")
    files = [p for p in (ROOT / "tests").rglob("*.py") if p.name != "test_standalone.py"]
    climbs = re.compile(r"""ROOT\.parent|\.parents\[[2-9]|["']\.\./""")
    outside = [f"{p.relative_to(ROOT)}" for p in files if climbs.search(p.read_text(encoding="utf-8"))]
    assert not outside, f"tests that read beside the repository: {outside}"
    named = {m for p in files for m in re.findall(r"S001R\d\d", p.read_text(encoding="utf-8"))}
    named |= {f"S001R0{i}" for i in (3, 4, 5, 6)}  # f"S001R0{i}" and f"S001R{run}" in loops
    carried = {p.name.removesuffix(".edf.xz") for p in (ROOT / "tests" / "data" / "eegmmidb-S001").glob("*.edf.xz")}
    assert named <= carried, f"named by tests but not in tests/data: {sorted(named - carried)}"
    assert (ROOT / "tests" / "data" / "README.md").read_text().count("ODC-By 1.0") >= 1
    size = sum(p.stat().st_size for p in (ROOT / "tests" / "data").rglob("*.xz"))
    assert size < 8e6, f"tests/data holds {size / 1e6:.1f} MB"


@pytest.mark.slow
def test_a_fresh_clone_with_nothing_beside_it_passes_a_fast_subset(tmp_path):
    assert (ROOT / ".git").exists(), "the suite runs from a git checkout (make test, .ci/run)"
    clone = tmp_path / "clone"
    r = subprocess.run(["git", "clone", "--quiet", "--no-local", str(ROOT), str(clone)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["clone"]  # nothing beside the clone
    for name in ("protocols", "configs", "recordings", "benchmarks", "tests", "neurofeed", "pyproject.toml",
                 "README.md", "constraints.txt"):
        assert (clone / name).exists(), name
    # a venv with the clone installed editable (no downloads: the dependencies are this interpreter's,
    # through a plain path entry, whose own .pth files, e.g. this checkout's editable install, are not read)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--quiet", "--no-deps",
                        "--no-index", "--no-build-isolation", "-e", str(clone)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LSLAPICFG", "NEUROFEED_CONFIGS",
                                                            "NEUROFEED_PROTOCOLS")}
    env.update(HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "home" / ".config"),
               QT_QPA_PLATFORM="offscreen")
    r = subprocess.run([str(py), "-c", "import neurofeed.core.library as l; print(l.__file__); "
                        "print(l.shipped_dir('protocols'))"], capture_output=True, text=True, cwd=clone, env=env,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert all(Path(line).is_relative_to(clone) for line in r.stdout.split()), r.stdout  # the clone's own
    r = subprocess.run([str(py), "-m", "pytest", "-q", "-p", "no:cacheprovider", *SUBSET], capture_output=True,
                       text=True, cwd=clone, env=env, timeout=900)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert re.search(r"\b\d+ passed\b", r.stdout) and " failed" not in r.stdout, r.stdout[-2000:]
    assert list((clone / "tests" / "data" / "eegmmidb-S001").glob("*.edf"))  # unpacked in the clone itself
