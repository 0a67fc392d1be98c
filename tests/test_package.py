"""The package as a user gets it: a wheel installed (not editable) and run from another folder,
and a core that imports nothing from the views."""

import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

from tests.conftest import CONFIGS, PROTOCOLS, ROOT


def _clean_env():
    """The environment without anything that would make Python import the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env["QT_QPA_PLATFORM"] = "offscreen"
    return env


def test_core_imports_nothing_from_the_views():
    code = textwrap.dedent("""
        import sys
        import neurofeed.protocol.engine, neurofeed.dsp, neurofeed.dsp.chain, neurofeed.live.pipeline
        import neurofeed.core.record, neurofeed.recording.writer, neurofeed.recording.bdf
        bad = sorted(m for m in sys.modules if m.startswith("neurofeed.ui") or m.split(".")[0] in
                     ("pyqtgraph", "PySide6", "pylsl", "matplotlib"))
        print(",".join(bad))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "", f"the core loaded {r.stdout.strip()}"


def test_wheel_installs_and_runs_from_another_folder(tmp_path):
    """Build the wheel with `python -m build` from a copy of the sources, install it (not editable, no
    downloads: the dependencies come from this interpreter's site-packages through a .pth file) into a
    fresh venv, and run the command from a folder that is not the checkout."""
    src = tmp_path / "src"
    for folder in ("neurofeed", "protocols", "configs"):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ["pyproject.toml", "README.md", *(p.name for p in ROOT.glob("LICENSE*"))]:
        shutil.copy(ROOT / name, src / name)
    dist = tmp_path / "dist"
    r = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(src)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    wheel = next(dist.glob("neurofeed-*.whl"))
    import zipfile

    with zipfile.ZipFile(wheel) as z:  # `pip install neurofeed` brings no dask: only the cluster extra does
        meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
        shipped_files = set(z.namelist())
    dask_reqs = [line for line in meta.splitlines() if line.startswith("Requires-Dist: dask")
                 or line.startswith("Requires-Dist: distributed")]
    assert dask_reqs and all("extra == \"cluster\"" in line for line in dask_reqs), dask_reqs
    assert "neurofeed/_protocols/stimuli/faces-neutral/faces-neutral-1.png" in shipped_files
    assert "neurofeed/_configs/cyton.toml" in shipped_files

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # the project's dependencies, already installed here; a plain path (its .pth files, e.g. an
    # editable install of the checkout, are not processed)
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index",
                        "--quiet", str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr

    run = tmp_path / "elsewhere"
    run.mkdir()
    env = _clean_env()
    r = subprocess.run([str(py), "-c", "import neurofeed; print(neurofeed.__file__)"], capture_output=True,
                       text=True, cwd=run, env=env, timeout=120)
    assert Path(r.stdout.strip()).is_relative_to(site), r.stdout + r.stderr  # the installed copy, not the checkout
    exe = venv / "bin" / "neurofeed"
    r = subprocess.run([str(exe), "protocols", "list"], capture_output=True, text=True, cwd=run, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    shipped = sorted(p.stem for p in PROTOCOLS.glob("*.toml"))
    assert len(shipped) >= 9
    for name in shipped:
        assert name in r.stdout, (name, r.stdout)
    # the boards are the repository's configs/; a user board config (the user folder, as the README
    # says) sets 60 Hz mains for the Cyton alone, and a reinstall of the wheel keeps it
    home = tmp_path / "home"
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    (home / ".config" / "neurofeed" / "boards").mkdir(parents=True)
    (home / ".config" / "neurofeed" / "boards" / "cyton.toml").write_text("line_hz = 60\n")
    for reinstall in (False, True):
        if reinstall:
            r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index",
                                "--force-reinstall", "--quiet", str(wheel)], capture_output=True, text=True, timeout=300)
            assert r.returncode == 0, r.stderr
        r = subprocess.run([str(exe), "boards"], capture_output=True, text=True, cwd=run, env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        boards = {line.split()[0]: line for line in r.stdout.splitlines()}
        assert set(boards) == {p.stem for p in CONFIGS.glob("*.toml")}, r.stdout
        assert "mains 60 Hz" in boards["cyton"] and "from user: " in boards["cyton"], boards["cyton"]
        assert all("mains 50 Hz" in line and line.endswith("from shipped") for b, line in boards.items() if b != "cyton")
    r = subprocess.run([str(exe), "session", "--board", "simulated", "--protocol", "demo", "--participant", "P01",
                        "--headless", "--seconds-scale", "0.1", "--no-lsl", "--out", str(run / "rec")],
                       capture_output=True, text=True, cwd=run, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Session summary" in r.stdout
    assert list((run / "rec").glob("P01/*/*.bdf"))


def test_dask_is_the_cluster_extra_and_scheduler_without_it_names_the_extra(tmp_path):
    """The wheel's core requirements hold no dask/distributed (only the ``cluster`` extra does), and
    ``replay --scheduler`` where they are not importable says which extra to install, in one line."""
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(meta["dependencies"]).lower()
    assert "dask" not in core and "distributed" not in core
    assert {r.split(">")[0] for r in meta["optional-dependencies"]["cluster"]} == {"dask", "distributed"}
    code = textwrap.dedent(f"""
        import sys
        sys.modules["distributed"] = None  # as if not installed: importing it raises ImportError
        sys.modules["dask"] = None
        from neurofeed.cli import main
        sys.exit(main(["replay", {str(ROOT / "tests" / "data" / "eegmmidb-S001" / "S001R04.edf")!r},
                       "--baseline-label", "T0", "--scheduler", "tcp://127.0.0.1:1", "--out", {str(tmp_path)!r}]))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                       env=_clean_env())
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.strip() == ("neurofeed: error: --scheduler needs the cluster extra (dask, distributed): "
                                "pip install 'neurofeed[cluster]'."), r.stderr
