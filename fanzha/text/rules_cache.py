"""The bundled typology and its compiled rule engine, cached as one pickle keyed by a content hash.

Building the rule engine (parsing and validating 20 YAML files, deriving the literal triggers of ~270
regexes, two Aho-Corasick automata) took about half of the detector's load time. Its result depends only
on the typology files, the code that builds it and the Python / pyahocorasick versions, so it is stored in
`fanzha/knowledge/model/rules_cache.pickle` under a SHA-256 of exactly those inputs. A cache whose key
does not match (a typology file was edited, added or removed; rules.py or loader.py changed; another
Python or pyahocorasick) is never used: the engine is built from the files and the cache is rewritten
(atomically) to the user's cache directory (`$XDG_CACHE_HOME/fanzha`, else `~/.cache/fanzha`), never into
the installed package, which stays as shipped; `python -m fanzha.text.rules_cache` rewrites the bundled file
explicitly. The cache is built locally, never downloaded; only the bundled file (or one a caller names)
is unpickled. Commit it after a typology change so installations start fast.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import sys
import tempfile
from pathlib import Path

import ahocorasick

from fanzha.knowledge import loader
from fanzha.knowledge.loader import TYPOLOGY_DIR, Typology, load_typology
from fanzha.text import rules
from fanzha.text.rules import RuleEngine

CACHE_PATH = Path(__file__).resolve().parent.parent / "knowledge" / "model" / "rules_cache.pickle"


def user_cache_path(key: str) -> Path:
    """Where a rebuilt engine for the bundled typology is kept when the bundled cache does not fit this
    installation (another Python, an edited typology): one file per key, in the user's cache directory."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "fanzha" / f"rules_cache-{key[:24]}.pickle"
FORMAT = b"fanzha-rules-cache/1"


def cache_key(typology_dir: Path = TYPOLOGY_DIR) -> str:
    """SHA-256 over everything the built engine depends on: the typology files (names and bytes), the
    source of the modules that parse and compile them, and the Python and pyahocorasick builds."""
    h = hashlib.sha256(FORMAT)
    h.update(f"|{sys.implementation.name}|{sys.version_info[:3]}|{sys.byteorder}|".encode())
    so = Path(ahocorasick.__file__ or "")
    h.update(so.name.encode() + b"|" + hashlib.sha256(so.read_bytes()).digest())
    for module in (rules, loader):
        h.update(Path(module.__file__ or "").read_bytes())
    for file in sorted(Path(typology_dir).glob("*.yaml")):
        data = file.read_bytes()
        h.update(f"|{file.name}|{len(data)}|".encode() + data)
    return h.hexdigest()


def _read(path: Path, key: str) -> RuleEngine | None:
    try:
        with path.open("rb") as fh:
            if fh.readline().rstrip(b"\n") != FORMAT + b" " + key.encode():
                return None
            engine = pickle.load(fh)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError):
        return None
    return engine if isinstance(engine, RuleEngine) else None


def write_cache(engine: RuleEngine, key: str, path: Path = CACHE_PATH) -> None:
    """Write atomically (temporary file + rename), so a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(prefix=".rules_cache.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(FORMAT + b" " + key.encode() + b"\n")
            pickle.dump(engine, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the file is package data like the model
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_rules(
    typology_dir: Path | None = None, cache_path: Path | None = None
) -> tuple[Typology, RuleEngine]:
    """The typology in `typology_dir` (default: the bundled one) and its rule engine.

    The bundled typology uses the bundled cache; another directory uses a cache only when `cache_path`
    is given. A missing or stale cache is rebuilt from the files and rewritten if possible.
    """
    root = Path(typology_dir) if typology_dir is not None else TYPOLOGY_DIR
    bundled = cache_path is None and root.resolve() == TYPOLOGY_DIR
    key: str | None = None
    write_to: Path | None = None
    if (bundled or cache_path is not None) and root.is_dir():
        try:
            key = cache_key(root)
        except OSError:  # sources not readable (e.g. a byte-code-only install): no cache
            key = None
    if key is not None:
        write_to = user_cache_path(key) if bundled else cache_path
        for candidate in ((CACHE_PATH, write_to) if bundled else (write_to,)):
            engine = _read(candidate, key) if candidate is not None else None
            if engine is not None:
                return engine.typology, engine
    typology = load_typology(root)
    engine = RuleEngine(typology)
    # Written only if no file changed while it was being built: the key must describe what was parsed.
    if key is not None and write_to is not None and cache_key(root) == key:
        with contextlib.suppress(OSError):  # no writable cache directory: keep building at load time
            write_to.parent.mkdir(parents=True, exist_ok=True)
            write_cache(engine, key, write_to)
    return typology, engine


def main() -> None:
    key = cache_key()
    write_cache(RuleEngine(load_typology()), key)
    print(f"wrote {CACHE_PATH} ({key[:12]})")


if __name__ == "__main__":
    main()
