"""Reading the bots file: where it is, parsing and validating it, and the error that names every problem.

The file is TOML (see docs/bots-file.md for why and for every key). It is found at ``CHATBOT_BOTS_FILE``,
else ``./bots.toml``, else the one this package ships (``bots/data/bots.toml``: ``default`` and
``orbit``). A bad file raises :class:`BotsFileError`, whose message has one line per problem:
``<file>:<line>: <key path>: <what is wrong>``. Secrets never appear in it: a value that looks like a
credential is refused without being repeated, and credentials are only ever named (``token_env``).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import ValidationError

from bots.bots_schema import (
    NAME_PATTERN,
    PLATFORMS,
    BotSection,
    BotsFileModel,
    GuardrailsSection,
    LimitsSection,
    PlatformSection,
    to_profile,
)
from core.bot_profile import BotProfile
from core.errors import ConfigError
from core.secrets import find_secret

PACKAGED = Path(__file__).resolve().parent / "data" / "bots.toml"
LOCAL_NAME = "bots.toml"
ENV_KEY = "CHATBOT_BOTS_FILE"


class BotsFileError(ConfigError):
    """The bots file does not load; ``problems`` holds one ``<file>:<line>: <key>: <what>`` line each."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path} is not a valid bots file:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class BotEntry:
    """One bot of the file: its profile, and what the wiring needs beside it."""

    profile: BotProfile
    enabled: bool
    platforms: dict[str, PlatformSection]
    limits: LimitsSection
    guardrails: GuardrailsSection
    session_prefix: str
    data_dir: Path
    knowledge_dir: Path | None

    @property
    def name(self) -> str:
        return self.profile.name


@dataclass(frozen=True)
class BotsConfig:
    """A loaded bots file: its bots by name, and every file it was read from (for the watcher)."""

    path: Path
    bots: dict[str, BotEntry]
    sources: tuple[Path, ...] = field(default=())

    def get(self, name: str) -> BotEntry:
        try:
            return self.bots[name.lower()]
        except KeyError:
            raise ConfigError(
                f"unknown bot {name!r}: choose one of {', '.join(sorted(self.bots))} (defined in {self.path})"
            ) from None


def environment(env_file: str | None = ".env") -> dict[str, str]:
    """The variables the bots file's names are looked up in: ``.env`` (as the settings read it), the
    environment on top."""
    values: dict[str, str] = {}
    if env_file is not None and os.path.isfile(env_file):
        values = {key: value for key, value in dotenv_values(env_file).items() if value is not None}
    return values | dict(os.environ)


def locate(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Path:
    """``CHATBOT_BOTS_FILE`` (environment or ``.env``), else ``./bots.toml`` when it exists, else the
    packaged file."""
    environ = environment() if environ is None else environ
    if environ.get(ENV_KEY):
        return Path(environ[ENV_KEY]).expanduser()
    local = (cwd or Path.cwd()) / LOCAL_NAME
    return local if local.is_file() else PACKAGED


def load_bots(path: Path | None = None) -> BotsConfig:
    """The bots file at ``path`` (default: :func:`locate`), validated; :class:`BotsFileError` if it is not."""
    path = locate() if path is None else path
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BotsFileError(path, [f"{path}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BotsFileError(path, [f"{path}: cannot read it ({exc})"]) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BotsFileError(path, [_toml_problem(path, str(exc))]) from None
    lines = KeyLines(text)
    secrets = dict(_secrets_in(raw))
    problems = [
        f"{path}:{lines.line_of(loc)}: {_dotted(loc)}: looks like a {kind}; secrets stay in the environment: "
        "write the variable's name in a *_env key instead"
        for loc, kind in secrets.items()
    ]
    try:
        model = BotsFileModel.model_validate(raw)
    except ValidationError as exc:
        problems += [
            _problem(path, lines, error)
            for error in exc.errors()
            if tuple(str(part) for part in error.get("loc", ())) not in secrets
        ]
    if problems:
        raise BotsFileError(path, problems)
    return _entries(path, lines, model)


def _entries(path: Path, lines: KeyLines, model: BotsFileModel) -> BotsConfig:
    base = path.resolve().parent
    problems: list[str] = []
    sources = [path.resolve()]

    def read_prompt(loc: tuple[str, ...], inline: str | None, relative: str | None) -> str:
        if relative is None:
            text = inline or ""
        else:
            file = (base / relative).resolve()
            sources.append(file)
            try:
                text = file.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                reason = "no such file" if isinstance(exc, FileNotFoundError) else f"cannot read it ({exc})"
                problems.append(f"{path}:{lines.line_of(loc)}: {_dotted(loc)}: {reason}: {file}")
                return ""
        if not text.strip():
            problems.append(f"{path}:{lines.line_of(loc)}: {_dotted(loc)}: the system prompt is empty")
        return text

    bots: dict[str, BotEntry] = {}
    for name, section in model.bots.items():
        at = ("bots", name)
        key = "system_prompt_file" if section.system_prompt_file is not None else "system_prompt"
        prompt = read_prompt((*at, key), section.system_prompt, section.system_prompt_file)
        mode_prompts = {}
        for mode_name, mode in section.modes.items():
            key = "system_prompt_file" if mode.system_prompt_file is not None else "system_prompt"
            mode_prompts[mode_name] = read_prompt(
                (*at, "modes", mode_name, key), mode.system_prompt, mode.system_prompt_file
            )
        admins = frozenset(
            f"{platform}:{admin}" for platform, where in section.platforms.items() for admin in where.admins
        )
        bots[name] = BotEntry(
            profile=to_profile(name, section, prompt, mode_prompts, admins),
            enabled=section.enabled,
            platforms=dict(section.platforms.items()),
            limits=section.limits,
            guardrails=section.guardrails,
            session_prefix=name if section.session_prefix is None else section.session_prefix,
            data_dir=(base / (section.data or name)).resolve(),
            knowledge_dir=None if section.knowledge is None else (base / section.knowledge).resolve(),
        )
    problems += _clashes(path, lines, model.bots, bots)
    if problems:
        raise BotsFileError(path, problems)
    return BotsConfig(path=path, bots=bots, sources=tuple(dict.fromkeys(sources)))


def _clashes(
    path: Path, lines: KeyLines, sections: dict[str, BotSection], bots: dict[str, BotEntry]
) -> list[str]:
    """Two enabled bots on one platform must not share its credentials or their session ids."""
    problems = []
    for platform in PLATFORMS:
        on = [entry for entry in bots.values() if entry.enabled and platform in entry.platforms]
        seen_env: dict[str, str] = {}
        seen_prefix: dict[str, str] = {}
        for entry in on:
            loc = ("bots", entry.name, "platforms", platform)
            for key, env in entry.platforms[platform].env_names().items():
                if env in seen_env:
                    problems.append(
                        f"{path}:{lines.line_of((*loc, key))}: {_dotted((*loc, key))}: {env} is also "
                        f"{seen_env[env]}'s {platform} credential; each bot needs its own"
                    )
                seen_env.setdefault(env, entry.name)
            if entry.session_prefix in seen_prefix:
                where = ("bots", entry.name, "session_prefix")
                problems.append(
                    f"{path}:{lines.line_of(where)}: {_dotted(where)}: {entry.session_prefix!r} is also "
                    f"{seen_prefix[entry.session_prefix]}'s on {platform}: their conversations would mix"
                )
            seen_prefix.setdefault(entry.session_prefix, entry.name)
    for name, section in sections.items():
        for mode_name, mode in section.modes.items():
            if section.models and mode.model is not None and mode.model not in section.models:
                at = ("bots", name, "modes", mode_name, "model")
                problems.append(
                    f"{path}:{lines.line_of(at)}: {_dotted(at)}: {mode.model!r} is not in this bot's models"
                )
    return problems


def _secrets_in(value: Any, loc: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    """``(key path, kind)`` of every string value that looks like a credential."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _secrets_in(item, (*loc, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _secrets_in(item, (*loc, str(index)))
    elif isinstance(value, str):
        kind = find_secret(value)
        if kind is not None:
            yield loc, kind


_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def _toml_problem(path: Path, message: str) -> str:
    """tomllib's ``Cannot declare ('bots', 'orbit') twice (at line 9, column 12)`` as one located line."""
    found = _TOML_AT.search(message)
    if found is None:
        return f"{path}: {message}"
    what = message[: found.start()]
    declared = re.fullmatch(r"Cannot declare \((.*)\) twice", what)
    if declared is not None:
        key = ".".join(part.strip().strip("'\"") for part in declared.group(1).split(","))
        what = f"{key} is defined twice" + (" (bot names must be unique)" if key.count(".") == 1 else "")
    return f"{path}:{found.group(1)}: {what}"


_MESSAGES = {
    "missing": "missing key",  # extra_forbidden is worded in _problem, with the key's name
}


def _problem(path: Path, lines: KeyLines, error: Mapping[str, Any]) -> str:
    """One validation error as ``<file>:<line>: <key path>: <what>``; the offending value is not shown."""
    loc = tuple(str(part) for part in error.get("loc", ()))
    kind = error.get("type", "")
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if loc and loc[-1] == "[key]":  # a table name that is not a valid name
        loc = loc[:-1]
        message = "names are 1-32 lowercase letters, digits, _ or -, starting with a letter or digit"
    elif kind == "extra_forbidden" and len(loc) >= 2 and loc[-2] == "platforms":
        message = f"unknown platform {loc[-1]!r}: choose from {', '.join(PLATFORMS)}"
    elif kind == "extra_forbidden":
        message = f"unknown key {loc[-1]!r}"
    elif kind in _MESSAGES:
        message = _MESSAGES[kind]
    elif kind == "string_pattern_mismatch" and error.get("ctx", {}).get("pattern") == NAME_PATTERN:
        message = "names are 1-32 lowercase letters, digits, _ or -"
    return f"{path}:{lines.line_of(loc)}: {_dotted(loc) or '(top level)'}: {message}"


def _dotted(loc: tuple[str, ...]) -> str:
    return ".".join(loc)


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_.\-\"' ]+?)\s*=")


class KeyLines:
    """The line each key path is written on, for error messages (tomllib gives values, not positions).

    A key that is not written (a missing key) is placed at its nearest written parent.
    """

    def __init__(self, text: str) -> None:
        self._lines: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        in_string = False
        for number, line in enumerate(text.splitlines(), start=1):
            if line.count('"""') % 2 == 1 or line.count("'''") % 2 == 1:
                was, in_string = in_string, not in_string
                if was:
                    continue
            elif in_string:
                continue
            header = _HEADER.match(line)
            if header is not None:
                table = _split_key(header.group(1))
                self._lines.setdefault(table, number)
                continue
            key = _KEY.match(line)
            if key is not None:
                self._lines.setdefault((*table, *_split_key(key.group(1))), number)

    def line_of(self, loc: tuple[str, ...]) -> int | str:
        """The line of ``loc`` or of its nearest written parent; ``?`` when none is written."""
        for end in range(len(loc), 0, -1):
            if loc[:end] in self._lines:
                return self._lines[loc[:end]]
        return "?"


def _split_key(key: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in key.split("."))
