"""Protocol files: the library validates, errors name the key, hypothesis never breaks the loader."""

import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurofeed.core.errors import ProtocolError
from neurofeed.protocol.schema import KINDS, load_protocol, parse_protocol
from tests.conftest import PROTOCOLS, run_cli

LIBRARY = ["depression-negative-overmirroring", "autism-gentle-regulation", "schizophrenia-negative-symptoms",
           "schizophrenia-positive-symptoms", "empathy-uptraining", "trauma-hypervigilance", "social-anxiety",
           "action-observation-research", "demo"]
DEMO = (PROTOCOLS / "demo.toml").read_text()


def test_library_is_complete_and_valid():
    names = {p.stem for p in PROTOCOLS.glob("*.toml")}
    assert set(LIBRARY) <= names
    for path in PROTOCOLS.glob("*.toml"):
        p = load_protocol(path)
        assert path.read_text().lstrip().startswith("#"), f"{path.name} must open with a clinician's comment"
        assert p.name == path.stem
        assert {b.kind for b in p.blocks} <= set(KINDS)
        assert p.total_duration_s() / 60 <= p.protocol.max_duration_min


def test_directions_and_low_stimulation_match_the_conditions():
    d = {n: load_protocol(PROTOCOLS / f"{n}.toml") for n in LIBRARY}
    for up in ("schizophrenia-negative-symptoms", "empathy-uptraining", "action-observation-research"):
        assert d[up].protocol.direction == "up"
    for down in ("autism-gentle-regulation", "schizophrenia-positive-symptoms", "trauma-hypervigilance",
                 "social-anxiety", "depression-negative-overmirroring"):
        assert d[down].protocol.direction == "down"
    dep = {b.label: b.direction for b in d["depression-negative-overmirroring"].blocks}
    assert dep["negative-faces"] == "down" and dep["positive-faces"] == "up"
    for gentle in ("autism-gentle-regulation", "trauma-hypervigilance"):
        assert d[gentle].feedback.style == "low-stimulation"
    assert d["trauma-hypervigilance"].schedule()[0].kind == "consolidation"  # a settling rest first
    assert 55 <= d["demo"].total_duration_s() <= 75


def _with(old, new):
    assert old in DEMO
    return DEMO.replace(old, new, 1)


@pytest.mark.parametrize("text, needle", [
    (_with("direction = \"up\"", "direction = \"up\"\ndirekshun = 1"), "unknown key [protocol] direkshun (did you mean 'direction'?)"),
    (_with("band_hz = [8.0, 13.0]", "band_hz = [13.0, 8.0]"), "[signal] band_hz"),
    (_with("band_hz = [8.0, 13.0]", "band_hz = \"mu\""), "[signal] band_hz must be a list"),
    (_with("duration_s = 15", "duration_s = 0"), "[blocks] duration_s must be > 0"),
    (_with("duration_s = 15", "duration_s = -3"), "[blocks] duration_s must be > 0"),
    (_with("kind = \"exploration\"", "kind = \"explore\""), "[blocks] kind is 'explore'"),
    (_with("baseline_reward_pct = 40", "baseline_reward_pct = \"40\""), "[threshold] baseline_reward_pct must be a number"),
    (_with("max_duration_min = 5", "max_duration_min = 0.5"), "[protocol] max_duration_min = 0.5"),
    (_with("rest_every_min = 5", "rest_every_min = 0.2"), "rest_every_min = 0.2"),
    (_with("block = \"baseline\"", "block = \"nope\""), "[baseline] block = 'nope'"),
    ("[protocol\nname=", "not valid TOML"),
])
def test_invalid_protocols_name_the_key(text, needle):
    with pytest.raises(ProtocolError) as err:
        parse_protocol(text, "bad.toml")
    msg = str(err.value)
    assert needle in msg and msg.startswith("bad.toml:") and "\n" not in msg


def test_band_above_nyquist_is_rejected_for_the_board():
    from neurofeed.live.processor import Processor
    p = parse_protocol(_with("band_hz = [8.0, 13.0]", "band_hz = [8.0, 90.0]"), "hi.toml")
    with pytest.raises(ProtocolError, match="Nyquist"):
        Processor(p, 160.0, ["C3", "C4", "FC3", "C5", "C1", "CP3", "FC4", "C6", "C2", "CP4"])


def test_muse_montage_names_missing_channels_and_never_advises_relabelling():
    r = run_cli("protocols", "check", "demo", "--board", "muse-2")
    assert r.returncode == 2
    assert "C3, C4" in r.stderr and "Traceback" not in r.stderr
    assert "--channel-map" not in r.stderr and "TP9=C3" not in r.stderr  # a mastoid is not motor cortex
    assert "cyton" in r.stderr  # says which boards' montages would fit instead


# -- hypothesis: arbitrary TOML documents only ever raise ProtocolError naming a key ---------------
TEXT = st.characters(blacklist_categories=("Cs",))  # TOML cannot hold lone surrogates
scalars = st.one_of(st.integers(-10 ** 6, 10 ** 6), st.floats(allow_nan=False, allow_infinity=False, width=32),
                    st.booleans(), st.text(TEXT, max_size=8))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(TEXT, max_size=6), inner, max_size=3)),
                      max_leaves=6)
DEMO_DOC = tomllib.loads(DEMO)
SECTIONS = ["protocol", "signal", "baseline", "threshold", "inhibits", "feedback", "markers", "schedule", "blocks"]


def _dump(doc):
    import json

    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v) if not isinstance(v, float) else repr(float(v))
        if isinstance(v, str):
            return json.dumps(ensure_ascii=False, obj=v)
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return "{" + ", ".join(f"{json.dumps(ensure_ascii=False, obj=k)} = {val(x)}" for k, x in v.items()) + "}"

    lines = []
    for sec, table in doc.items():
        if sec == "blocks" and isinstance(table, list) and all(isinstance(b, dict) for b in table):
            for b in table:
                lines.append("[[blocks]]")
                lines += [f"{json.dumps(ensure_ascii=False, obj=k)} = {val(v)}" for k, v in b.items()]
        elif isinstance(table, dict):
            lines.append(f"[{sec}]")
            lines += [f"{json.dumps(ensure_ascii=False, obj=k)} = {val(v)}" for k, v in table.items()]
        else:
            lines.insert(0, f"{json.dumps(ensure_ascii=False, obj=sec)} = {val(table)}")
    return "\n".join(lines)


@settings(max_examples=300, deadline=None)
@given(section=st.sampled_from(SECTIONS), key=st.one_of(st.text(TEXT, min_size=1, max_size=10), st.sampled_from(
    ["name", "direction", "band_hz", "targets", "duration_s", "kind", "mode", "repeats", "scale", "emg_uv",
     "baseline_reward_pct", "label", "feedback", "statistic", "min_si", "delay_s", "stream", "seed"])),
       value=values)
def test_generated_protocols_raise_only_validation_errors_naming_the_key(section, key, value):
    import copy

    doc = copy.deepcopy(DEMO_DOC)
    if section == "blocks":
        doc["blocks"][0][key] = value
    else:
        doc.setdefault(section, {})[key] = value
    try:
        p = parse_protocol(_dump(doc), "gen.toml")
    except ProtocolError as err:
        msg = str(err)
        assert msg.startswith("gen.toml:") and "\n" not in msg
        import re

        if "not valid TOML" in msg:  # the generator's dump can be invalid TOML: then line and column are named
            assert "line" in msg
            return
        # names the key at fault as "[table] key" (the one changed, or the one it contradicts)
        assert re.search(r"\[(\w+)\]( is| must|\s+\S+)", msg), msg
        assert key in msg or section in msg or "[baseline] block" in msg or "[protocol]" in msg, msg
    else:
        assert p.blocks and p.total_duration_s() > 0


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_never_raises_anything_else(text):
    try:
        parse_protocol(text, "junk.toml")
    except ProtocolError as err:
        assert str(err).startswith("junk.toml:")


def test_cli_protocols_list_and_check():
    r = run_cli("protocols", "list")
    assert r.returncode == 0
    for name in LIBRARY:
        assert name in r.stdout
    r = run_cli("protocols", "check", *sorted(str(p) for p in PROTOCOLS.glob("*.toml")))
    assert r.returncode == 0 and r.stdout.count("ok ") == len(list(PROTOCOLS.glob("*.toml")))


def test_an_unknown_builtin_stimulus_is_refused_before_the_session(tmp_path):
    text = (PROTOCOLS / "action-observation-research.toml").read_text()
    assert "builtin:point-light-hands" in text
    bad = tmp_path / "typo.toml"
    bad.write_text(text.replace("builtin:point-light-hands", "builtin:point-light-hand"))
    r = run_cli("protocols", "check", bad)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "'builtin:point-light-hand' is not a built-in stimulus" in r.stderr and "builtin:point-light-hands" in r.stderr
    r = run_cli("session", "--protocol", bad, "--board", "simulated", "--participant", "P01", "--headless",
                "--out", tmp_path / "rec")
    assert r.returncode == 2 and "typo.toml: [[blocks]]" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "rec").exists()  # refused before anything was recorded
