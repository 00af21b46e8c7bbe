"""The chat commands one engine answers without the model, in one registry.

The engine registers its built-ins (``/start``, ``/help``, ``/reset``); features add theirs (``/forget``)
with :meth:`Commands.add`. Everything that lists commands is derived from the registry: the ``/help`` text,
Telegram's command menu and group addressing, Discord's slash commands, Slack's ``!command`` aliases. A
command a feature adds therefore shows up on every platform without adapter changes.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator
from dataclasses import dataclass

from core.incoming import IncomingMessage

CommandHandler = Callable[[IncomingMessage], Awaitable[str]]

# What every platform accepts: Telegram allows 1-32 of [a-z0-9_], Discord 1-32 lowercase characters;
# descriptions are 3-256 characters on Telegram and 1-100 on Discord.
_NAME = re.compile(r"[a-z0-9_]{1,32}")
MAX_DESCRIPTION = 100
MIN_DESCRIPTION = 3


@dataclass(frozen=True, slots=True)
class Command:
    """One chat command: ``name`` without the ``/``, a one-line description for help and menus."""

    name: str
    description: str
    handler: CommandHandler

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(
                f"command name {self.name!r}: use 1-32 lowercase letters, digits or _ (no '/'), "
                "so that every platform accepts it"
            )
        if not MIN_DESCRIPTION <= len(self.description) <= MAX_DESCRIPTION or "\n" in self.description:
            raise ValueError(
                f"command /{self.name}: its description must be one line of {MIN_DESCRIPTION}-"
                f"{MAX_DESCRIPTION} characters (Discord's and Telegram's limits)"
            )

    @property
    def help_line(self) -> str:
        """``/reset: forget this conversation ...``: the menu description, lower-cased to read as a sentence."""
        return f"/{self.name}: {self.description[:1].lower()}{self.description[1:]}"


class Commands:
    """The engine's commands, in the order they were added (the order help and menus show them)."""

    def __init__(self, commands: Iterable[Command] = ()) -> None:
        self._by_name: dict[str, Command] = {}
        for command in commands:
            self.add(command)

    def add(self, command: Command) -> None:
        """Register ``command``; a name already taken is an error (two features must not shadow each other)."""
        if command.name in self._by_name:
            raise ValueError(f"the command /{command.name} is already registered")
        self._by_name[command.name] = command

    def get(self, name: str) -> Command | None:
        """The command called ``name`` (with or without its ``/``), or ``None``."""
        return self._by_name.get(name.removeprefix("/").lower())

    def names(self) -> frozenset[str]:
        """The commands' names without ``/``."""
        return frozenset(self._by_name)

    def parse(self, text: str) -> Command | None:
        """The command ``text`` invokes, if any (see :func:`parse_command`)."""
        name = parse_command(text, self._by_name)
        return None if name is None else self._by_name[name.removeprefix("/")]

    def __iter__(self) -> Iterator[Command]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None


def parse_command(text: str, names: Collection[str]) -> str | None:
    """``/reset`` for ``/reset`` or ``/RESET now`` when ``reset`` is in ``names``; ``None`` for anything else.

    ``/reset@somebot`` is another bot's command, so it is not one: adapters take their own bot's name off
    (Telegram's ``/reset@thisbot`` arrives as ``/reset``), and what still names a bot is plain text.
    """
    stripped = text.strip()
    if not stripped.startswith("/"):
        return None
    word = stripped.split(maxsplit=1)[0].lower()
    if "@" in word:
        return None
    return word if word[1:] in names else None
