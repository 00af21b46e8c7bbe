"""What each OpenAI-compatible server family says, and how to ask it for its context window.

Overflow forms recognised (see docs/models/*.md for the sources):

- OpenAI: 400, ``code: context_length_exceeded``, "This model's maximum context length is N tokens. However,
  your messages resulted in M tokens."
- vLLM: 400, "This model's maximum context length is N tokens. However, you requested M tokens (P in the
  messages, C in the completion)." and the newer "... N tokens and your request has P input tokens (C > N - P)".
- llama-server: 400 ``type: exceed_context_size_error``, "request (M tokens) exceeds the available context
  size (N tokens)", with ``n_prompt_tokens``/``n_ctx`` in the body; with shared slots an error event inside
  a 200 stream, "Context size has been exceeded."
- llama-cpp-python: non-streamed "Requested tokens (M) exceed context window of N"; streamed, an empty 200
  stream (handled in :mod:`core.model_client`).
- LM Studio: "The number of tokens to keep from the initial prompt is greater than the context length
  (n_keep: M>= n_ctx: N)" and "Trying to keep the first M tokens when context the overflows. However, the
  model is loaded with context length of only N tokens".
- Ollama truncates silently (no error): only knowing its window helps.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import openai
from openai import AsyncOpenAI

from core.errors import ContextTooLong

log = logging.getLogger(__name__)

OVERFLOW_WORDS = re.compile(
    r"context[ _]length|context window|context size|maximum context|too many tokens|prompt is too long|"
    r"exceed_context_size|exceeds? (the )?(model'?s? )?(maximum|max|context)|n_keep",
    re.IGNORECASE,
)
_WINDOW = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"maximum context length is (\d+)",
        r"available context size \((\d+) tokens\)",
        r"exceed context window of (\d+)",
        r"n_ctx\"?:? ?\(?(\d+)",
        r"context length of only (\d+)",
    )
]
_REQUESTED = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"you requested (\d+) tokens",
        r"request \((\d+) tokens\)",
        r"requested tokens \((\d+)\)",
        r"n_keep\"?:? ?\(?(\d+)",
        r"keep the first (\d+) tokens",
    )
]
_PROMPT = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"resulted in (\d+) tokens",
        r"\((\d+) in the messages",
        r"your request has (\d+) input tokens",
    )
]
_VLLM_COMPLETION = re.compile(r"\((\d+) > \d+ - \d+\)|(\d+) in the completion", re.IGNORECASE)


def _first(patterns: list[re.Pattern[str]], text: str) -> int | None:
    for pattern in patterns:
        found = pattern.search(text)
        if found:
            return int(found.group(1))
    return None


def _body_int(body: object, key: str) -> int | None:
    value = body.get(key) if isinstance(body, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def overflow_from(message: str, body: object = None, code: object = None) -> ContextTooLong | None:
    """A :class:`ContextTooLong` with the numbers the server gave, if this error is an overflow."""
    kind = body.get("type") if isinstance(body, dict) else None
    if not (
        code == "context_length_exceeded"
        or kind == "exceed_context_size_error"
        or OVERFLOW_WORDS.search(message)
    ):
        return None
    window = _body_int(body, "n_ctx") or _first(_WINDOW, message)
    prompt = _body_int(body, "n_prompt_tokens") or _first(_PROMPT, message)
    requested = _first(_REQUESTED, message)
    if requested is None and prompt is not None:
        completion = _VLLM_COMPLETION.search(message)
        extra = int(next(g for g in completion.groups() if g)) if completion else 0
        requested = prompt + extra
    text = _short(message)
    return ContextTooLong(text, window=window, requested=requested, prompt_tokens=prompt)


def _short(message: str) -> str:
    return message if len(message) <= 300 else message[:297] + "..."


# --- window discovery -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerWindow:
    """What the server told us about itself.

    ``exact`` is false when the number is our best guess (Ollama without an explicit ``num_ctx``).
    ``slots`` is llama.cpp's parallel slot count (``total_slots`` in ``/props``).
    """

    dialect: str
    window: int | None
    source: str
    exact: bool = True
    slots: int | None = None


OLLAMA_DEFAULT_NUM_CTX = 4096  # docs/context-length.mdx of ollama: 4k below 24 GiB of VRAM


def server_root(base_url: str) -> str:
    """The server's root URL: the base URL without its trailing ``/v1``."""
    url = base_url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


async def _get(client: AsyncOpenAI, url: str) -> Any:
    try:
        return await client.get(url, cast_to=object)
    except (openai.APIError, ValueError):
        return None


async def _post(client: AsyncOpenAI, url: str, body: dict[str, Any]) -> Any:
    try:
        return await client.post(url, body=body, cast_to=object)
    except (openai.APIError, ValueError):
        return None


def _positive(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _llamacpp_props(props: object) -> ServerWindow | None:
    # tools/server/README.md of llama.cpp: GET /props -> default_generation_settings.n_ctx, total_slots;
    # newer builds also have n_ctx at the top level.
    if not isinstance(props, dict):
        return None
    settings = props.get("default_generation_settings")
    window = _positive(props.get("n_ctx")) or (
        _positive(settings.get("n_ctx")) if isinstance(settings, dict) else None
    )
    if window is None:
        return None
    return ServerWindow("llama-server", window, "llama.cpp /props", slots=_positive(props.get("total_slots")))


def _entry(listing: object, model: str) -> dict[str, Any] | None:
    data = listing.get("data") if isinstance(listing, dict) else None
    if not isinstance(data, list):
        return None
    entries = [e for e in data if isinstance(e, dict)]
    for entry in entries:
        if entry.get("id") == model:
            return entry
    return entries[0] if len(entries) == 1 else None


def _ollama_show(show: object) -> ServerWindow | None:
    # docs/api.md of ollama: POST /api/show -> parameters ("num_ctx 8192" lines), model_info
    # ("<arch>.context_length": the trained maximum, not what the server loads).
    if not isinstance(show, dict):
        return None
    parameters = show.get("parameters")
    if isinstance(parameters, str):
        found = re.search(r"^\s*num_ctx\s+(\d+)", parameters, re.MULTILINE)
        if found:
            return ServerWindow("ollama", int(found.group(1)), "ollama /api/show num_ctx")
    info = show.get("model_info")
    trained = None
    if isinstance(info, dict):
        trained = next(
            (_positive(v) for k, v in info.items() if k.endswith(".context_length") and _positive(v)), None
        )
    if trained is None and "model_info" not in show:
        return None
    guess = min(trained or OLLAMA_DEFAULT_NUM_CTX, OLLAMA_DEFAULT_NUM_CTX)
    return ServerWindow("ollama", guess, "ollama default num_ctx (guess)", exact=False)


async def discover_window(client: AsyncOpenAI, model: str) -> ServerWindow | None:
    """Ask the server behind ``client`` for its context window; ``None`` if it cannot tell.

    Tries, in order: vLLM (``GET /v1/models`` -> ``max_model_len``), llama.cpp (``GET /props``), LM Studio
    (``GET /api/v0/models`` -> ``loaded_context_length``/``max_context_length``), Ollama (``POST /api/show``,
    then ``GET /api/ps`` -> ``context_length`` of the loaded model). Each probe is one quick request.
    """
    quick = client.with_options(max_retries=0, timeout=5.0)
    base = str(client.base_url).rstrip("/")
    root = server_root(base)
    listing = await _get(quick, f"{base}/models")
    entry = _entry(listing, model)
    if entry is not None and _positive(entry.get("max_model_len")):
        # vllm/entrypoints/openai/protocol.py: ModelCard.max_model_len
        return ServerWindow("vllm", int(entry["max_model_len"]), "vLLM /v1/models max_model_len")
    found = _llamacpp_props(await _get(quick, f"{root}/props"))
    if found is not None:
        return found
    studio = _entry(await _get(quick, f"{root}/api/v0/models"), model)
    if studio is not None:
        # lmstudio.ai/docs/app/api/endpoints/rest: loaded_context_length (when loaded), max_context_length
        window = _positive(studio.get("loaded_context_length")) or _positive(studio.get("max_context_length"))
        if window is not None:
            exact = _positive(studio.get("loaded_context_length")) is not None
            return ServerWindow("lmstudio", window, "LM Studio /api/v0/models", exact=exact)
    show = _ollama_show(await _post(quick, f"{root}/api/show", {"model": model}))
    if show is not None and not show.exact:
        running = await _get(quick, f"{root}/api/ps")
        for item in running.get("models", []) if isinstance(running, dict) else []:
            if isinstance(item, dict) and item.get("name") in (model, f"{model}:latest"):
                loaded = _positive(item.get("context_length"))
                if loaded is not None:
                    return ServerWindow("ollama", loaded, "ollama /api/ps context_length")
    return show


@dataclass(frozen=True, slots=True)
class WindowChoice:
    window: int
    source: str


def choose_window(
    found: ServerWindow | None, configured: int | None, table: int | None, default: int
) -> WindowChoice:
    """The window to budget with: the server's own, then ``CHATBOT_CONTEXT_TOKENS``, then the table.

    A configured window smaller than the server's wins (the operator wants less); a larger one loses to an
    exact server answer (it would overflow on every long conversation). A guessed server window (Ollama
    without ``num_ctx``) loses to the setting.
    """
    if found is not None and found.window is not None:
        if configured is not None and (configured < found.window or not found.exact):
            return WindowChoice(configured, "CHATBOT_CONTEXT_TOKENS")
        return WindowChoice(found.window, found.source)
    if configured is not None:
        return WindowChoice(configured, "CHATBOT_CONTEXT_TOKENS")
    if table is not None:
        return WindowChoice(table, "known-model table")
    return WindowChoice(default, "default")
