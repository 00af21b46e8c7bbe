"""The terminal bot: a REPL on a TTY, one message per line from a pipe.

A terminal can append, so replies are printed as they stream rather than edited in place. Session ids are
``console:<ID>``.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from core.conversation import ConversationEngine
from core.hooks import Retraction
from core.incoming import IncomingMessage

QUIT = {"/quit", "/exit"}


def session_id(name: str) -> str:
    return f"console:{name}"


class TerminalChat:
    """Reads messages from ``stdin`` and streams the bot's replies to ``stdout``."""

    def __init__(
        self,
        engine: ConversationEngine,
        *,
        session: str = "default",
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        interactive: bool | None = None,
    ) -> None:
        self.engine = engine
        self.session_id = session_id(session)
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.interactive = self.stdin.isatty() if interactive is None else interactive

    def _write(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    async def _read_line(self) -> str | None:
        if self.interactive:
            self._write("\nyou> ")
        line = await asyncio.to_thread(self.stdin.readline)
        return None if line == "" else line.rstrip("\n")

    async def run(self) -> int:
        """Chat until end of input (or ``/quit``); return the exit status."""
        if self.interactive:
            self._write(f"{self.engine.bot.greeting}\n(/help for commands, /quit or Ctrl-D to leave)\n")
        while True:
            try:
                line = await self._read_line()
            except (KeyboardInterrupt, EOFError):
                line = None
            if line is None or line.strip().lower() in QUIT:
                if self.interactive:
                    self._write("\n")
                return 0
            if not line.strip():
                continue
            await self.answer(line)

    async def answer(self, text: str) -> None:
        message = IncomingMessage(
            session_id=self.session_id, text=text, user_id="console:local", platform="console"
        )
        if self.interactive:
            self._write("bot> ")
        async for chunk in self.engine.reply(message):
            if isinstance(chunk, Retraction):  # a terminal cannot unprint: say the text above is withdrawn
                self._write("\n[withdrawn] ")
            self._write(chunk)
        self._write("\n")
