"""The protocol library and board configs: the top-level protocols/ and configs/ are what ships, the
user's folders and $NEUROFEED_* folders lay files over them one by one, and the listings say where
each file comes from."""

from pathlib import Path

import pytest

from tests.conftest import CONFIGS, PROTOCOLS, ROOT, run_cli


@pytest.fixture
def user_home(tmp_path, monkeypatch):
    """A temporary user config folder (platformdirs reads $XDG_CONFIG_HOME on Linux)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    monkeypatch.delenv("NEUROFEED_CONFIGS", raising=False)
    monkeypatch.delenv("NEUROFEED_PROTOCOLS", raising=False)
    return tmp_path / "home" / ".config" / "neurofeed"


def test_the_shipped_library_is_the_top_level_folders():
    from neurofeed.core.library import shipped_dir

    # the editable install reads the repository's folders in place
    assert shipped_dir("protocols").resolve() == PROTOCOLS.resolve()
    assert shipped_dir("boards").resolve() == CONFIGS.resolve()
    assert not list((ROOT / "neurofeed").glob("data/**/*.toml"))  # one copy of each file
    for name in ("protocols", "configs", "recordings", "benchmarks", "tests", "neurofeed", "pyproject.toml",
                 "README.md"):
        assert (ROOT / name).exists(), name


def test_a_user_board_config_changes_line_hz_for_that_board_only(user_home):
    from neurofeed.hardware.boards import get_board

    shipped = {b: get_board(b).line_hz for b in ("cyton", "cyton-daisy")}
    assert shipped == {"cyton": 50.0, "cyton-daisy": 50.0}
    (user_home / "boards").mkdir(parents=True)
    (user_home / "boards" / "cyton.toml").write_text("line_hz = 60\n")
    cyton = get_board("cyton")
    assert cyton.line_hz == 60.0
    assert cyton.origin.startswith("user: ") and cyton.origin.endswith("(over shipped)")
    # the rest of the shipped config still applies (board id, montages)
    assert cyton.board_id == "CYTON_BOARD" and "mu" in cyton.montage_names()
    assert get_board("cyton-daisy").line_hz == 50.0
    r = run_cli("boards")
    assert r.returncode == 0, r.stderr
    lines = {line.split()[0]: line for line in r.stdout.splitlines()}
    assert "mains 60 Hz" in lines["cyton"] and "from user: " in lines["cyton"]
    assert "mains 50 Hz" in lines["cyton-daisy"] and lines["cyton-daisy"].endswith("from shipped")


def test_a_bad_user_board_config_fails_in_one_line_naming_it(user_home):
    (user_home / "boards").mkdir(parents=True)
    bad = user_home / "boards" / "cyton.toml"
    bad.write_text("line_hz = 55\n")
    r = run_cli("boards")
    assert r.returncode != 0
    assert str(bad) in r.stderr and "line_hz" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_environment_folders_add_to_the_library_rather_than_replace_it(user_home, tmp_path, monkeypatch):
    extra_boards, extra_protocols = tmp_path / "lab-boards", tmp_path / "lab-protocols"
    extra_boards.mkdir()
    extra_protocols.mkdir()
    (extra_boards / "lab-amp.toml").write_text('name = "lab-amp"\nboard_id = "SYNTHETIC_BOARD"\nline_hz = 60\n')
    (extra_protocols / "lab-demo.toml").write_text((PROTOCOLS / "demo.toml").read_text().replace(
        'name = "demo"', 'name = "lab-demo"', 1))
    monkeypatch.setenv("NEUROFEED_CONFIGS", str(extra_boards))
    monkeypatch.setenv("NEUROFEED_PROTOCOLS", str(extra_protocols))
    (user_home / "protocols").mkdir(parents=True)
    (user_home / "protocols" / "demo.toml").write_text((PROTOCOLS / "demo.toml").read_text())

    r = run_cli("boards")
    assert r.returncode == 0, r.stderr
    names = {line.split()[0]: line for line in r.stdout.splitlines()}
    assert set(names) == {p.stem for p in CONFIGS.glob("*.toml")} | {"lab-amp"}
    assert f"from $NEUROFEED_CONFIGS: {extra_boards / 'lab-amp.toml'}" in names["lab-amp"]

    r = run_cli("protocols", "list")
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line for line in r.stdout.splitlines()[1:]}
    assert set(rows) == {p.stem for p in PROTOCOLS.glob("*.toml")} | {"lab-demo"}
    assert rows["demo"].endswith(f"user: {user_home / 'protocols' / 'demo.toml'} (over shipped)")
    assert rows["lab-demo"].endswith(f"$NEUROFEED_PROTOCOLS: {extra_protocols / 'lab-demo.toml'}")
    assert rows["social-anxiety"].endswith("shipped")

    from neurofeed.protocol.schema import resolve_protocol

    assert resolve_protocol("demo") == user_home / "protocols" / "demo.toml"
    assert resolve_protocol("lab-demo") == extra_protocols / "lab-demo.toml"
    assert Path(resolve_protocol("social-anxiety")).resolve() == (PROTOCOLS / "social-anxiety.toml").resolve()
