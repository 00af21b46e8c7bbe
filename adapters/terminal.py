"""The terminal bot: a REPL on a TTY, one message per line from a pipe.

A terminal can append, so replies are printed as they stream rather than edited in place. Session ids are
``console:<ID>``. A reply in flight is kept in the store (see :mod:`adapters.in_flight`): if the process is
killed mid-reply, the next start records that turn as interrupted and says so.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from adapters.in_flight import finish_interrupted_replies
from core.conversation import ConversationEngine
from core.hooks import Progress, Retraction
from core.incoming import IncomingMessage
from core.store import ReplyJournal

QUIT = {"/quit", "/exit"}
PLATFORM = "console"
SAVE_EVERY = 1.0  # seconds between updates of the reply in flight's text
CUT_BEFORE = "(Your last question before a restart was interrupted; please ask it again.)\n"


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
        self.session_id = engine.session_key(session_id(session))
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
        if await finish_interrupted_replies(self.engine, PLATFORM, None) and self.interactive:
            self._write(CUT_BEFORE)
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
            session_id=self.session_id, text=text, user_id="console:local", platform=PLATFORM
        )
        if self.interactive:
            self._write("bot> ")
        store = self.engine.store
        journal = store if isinstance(store, ReplyJournal) else None
        reply_id = (
            await journal.begin_reply(self.session_id, PLATFORM, self.engine.bot.name, message.user_id, {})
            if journal is not None
            else None
        )
        clock = self.engine.clock
        shown, saved_at = "", clock.now()
        try:
            async for chunk in self.engine.reply(message):
                if isinstance(chunk, Progress):  # a passing line: a terminal cannot take it back
                    continue
                if isinstance(
                    chunk, Retraction
                ):  # a terminal cannot unprint: say the text above is withdrawn
                    self._write("\n[withdrawn] ")
                    shown = ""
                self._write(chunk)
                shown += chunk
                if journal is not None and reply_id is not None and clock.now() - saved_at >= SAVE_EVERY:
                    await journal.reply_shown(reply_id, None, shown)
                    saved_at = clock.now()
            self._write("\n")
        finally:  # the engine recorded the turn, whatever happened; only a killed process leaves the row
            if journal is not None and reply_id is not None:
                await asyncio.shield(journal.end_reply(reply_id))
