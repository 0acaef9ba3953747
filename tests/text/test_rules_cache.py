"""The prebuilt rule engine (fanzha/text/rules_cache.py) is used only while it matches the typology files."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import orjson
import pytest

from fanzha.knowledge.loader import TYPOLOGY_DIR, load_typology
from fanzha.text import rules_cache
from fanzha.text.detector import Detector, _DefaultSettings, _settings
from fanzha.text.normalize import normalize
from fanzha.text.rules import RuleEngine
from fanzha.text.rules_cache import FORMAT, cache_key, load_rules

SAMPLES = Path(__file__).resolve().parents[2] / "fanzha" / "knowledge" / "samples" / "sample_messages.jsonl"


def _texts() -> list[str]:
    typology = load_typology()
    texts = []
    for line in SAMPLES.read_bytes().splitlines():
        rec = orjson.loads(line) if line.strip() else {}
        texts += [rec["text"]] if "text" in rec else [t["text"] for t in rec.get("turns", ())]
    texts += [t.typical_script for t in typology.types.values()]
    texts += [t.description for t in typology.types.values()]
    return [normalize(t).text for t in texts]


def _same_engine(a: RuleEngine, b: RuleEngine) -> None:
    assert a.typology == b.typology
    assert a.feature_names() == b.feature_names()
    assert a._regexes == b._regexes
    assert (a._always, a._need2) == (b._always, b._need2)
    assert list(a._automaton.items()) == list(b._automaton.items())
    for text in _texts():
        assert a.match(text) == b.match(text), text


def test_cached_engine_equals_a_fresh_build(tmp_path: Path) -> None:
    cache = tmp_path / "rules.pickle"
    _, built = load_rules(TYPOLOGY_DIR, cache)  # no file yet: builds and writes it
    assert cache.read_bytes().startswith(FORMAT + b" " + cache_key().encode() + b"\n")
    _, cached = load_rules(TYPOLOGY_DIR, cache)
    assert cached is not built
    _same_engine(cached, RuleEngine(load_typology()))


def test_bundled_detector_rules_equal_a_fresh_build() -> None:
    _same_engine(Detector.from_settings(with_model=False).rules, RuleEngine(load_typology()))


def test_edited_typology_is_never_served_from_a_stale_cache(tmp_path: Path) -> None:
    root = tmp_path / "typology"
    shutil.copytree(TYPOLOGY_DIR, root)
    cache = tmp_path / "rules.pickle"
    _, before = load_rules(root, cache)
    text = "这是一个测试用的新诈骗暗号"
    assert not [h for h in before.match(text) if h.rule.endswith("新诈骗暗号")]
    old_key = cache_key(root)

    # A data edit: one keyword more for one type.
    file = root / "gambling.yaml"
    source = file.read_text(encoding="utf-8")
    assert "\nkeywords:\n" in source
    file.write_text(
        source.replace("\nkeywords:\n", "\nkeywords:\n  - term: 新诈骗暗号\n    weight: 0.5\n", 1),
        encoding="utf-8",
    )
    assert cache_key(root) != old_key
    _, after = load_rules(root, cache)
    assert [h.rule for h in after.match(text)] == ["kw:gambling:新诈骗暗号"]
    # The cache was rewritten for the new files and is served from now on.
    assert cache.read_bytes().startswith(FORMAT + b" " + cache_key(root).encode() + b"\n")
    _, again = load_rules(root, cache)
    _same_engine(again, RuleEngine(load_typology(root)))

    # A new file counts too (here a broken one: loading must fail, not fall back to the cache).
    (root / "zz_extra.yaml").write_text("code: zz_extra\n", encoding="utf-8")
    assert cache_key(root) != cache_key(TYPOLOGY_DIR)
    with pytest.raises(ValueError):
        load_rules(root, cache)


def test_a_broken_or_foreign_cache_is_rebuilt(tmp_path: Path) -> None:
    cache = tmp_path / "rules.pickle"
    key = cache_key()
    for content in (
        b"garbage",
        FORMAT + b" " + key.encode() + b"\nnot a pickle",
        FORMAT + b" " + key.encode() + b"\n" + pickle.dumps({"not": "an engine"}),
    ):
        cache.write_bytes(content)
        _, engine = load_rules(TYPOLOGY_DIR, cache)
        _same_engine(engine, RuleEngine(load_typology()))
        assert rules_cache._read(cache, key) is not None  # rewritten


def test_other_typology_dirs_get_no_cache_unless_asked(tmp_path: Path) -> None:
    root = tmp_path / "typology"
    shutil.copytree(TYPOLOGY_DIR, root)
    load_rules(root)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["typology"]
    assert sorted(p.name for p in root.iterdir()) == sorted(p.name for p in TYPOLOGY_DIR.iterdir())


def test_default_settings_equal_settings_without_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from fanzha.settings import Settings

    for name in list(__import__("os").environ):
        if name.upper().startswith("FANZHA_"):
            monkeypatch.delenv(name)
    fast, full = _settings(), Settings()
    assert isinstance(fast, _DefaultSettings)
    for field in ("model_path", "typology_dir", "max_text_chars"):
        assert getattr(fast, field) == getattr(full, field), field


def test_any_fanzha_variable_takes_the_full_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("fanzha_max_text_chars", "77")  # pydantic-settings ignores the case
    assert _settings().max_text_chars == 77
    assert Detector.from_settings(with_model=False).max_text_chars == 77


def test_a_stale_bundled_cache_is_rebuilt_into_the_user_cache_not_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fanzha.text import rules_cache

    stale = tmp_path / "bundled.pickle"
    stale.write_bytes(rules_cache.FORMAT + b" not-the-key\n")
    monkeypatch.setattr(rules_cache, "CACHE_PATH", stale)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    typology, engine = rules_cache.load_rules()
    assert stale.read_bytes() == rules_cache.FORMAT + b" not-the-key\n"  # the package stays as shipped
    written = rules_cache.user_cache_path(rules_cache.cache_key())
    assert written.is_file() and written.is_relative_to(tmp_path / "xdg")
    again_typology, again = rules_cache.load_rules()  # now served from the user cache
    assert again is not engine and len(again_typology.types) == len(typology.types)
