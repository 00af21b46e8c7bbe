"""Changes without a restart: the bots file (and the prompt files it names) are watched; a valid edit
replaces each running bot's profile, an invalid one is ignored with one log line naming the problems.

A turn holds the profile it started with (``ConversationEngine.profile_for``), so a reply in flight
finishes with the old settings and the next turn uses the new ones. Environment overrides
(``CHATBOT_MODEL``...) are applied on top again, and the window found at start is kept.

What a reload applies: everything in the bot's profile (prompts, greeting, description, model and
parameters, trimming, input limit, modes, models, admins). What needs a restart, and is logged as such:
bots added or removed, platforms and credentials, limits, guardrails, ``/mode`` and ``/model`` appearing
for a bot that had no modes or models, and the context window.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

import watchfiles

from bots.app import fit_to_window
from bots.bots_file import BotsConfig, BotsFileError, load_bots
from bots.fleet import RunningBot
from core.errors import ConfigError

log = logging.getLogger(__name__)


class BotsFileReloader:
    """Re-reads the bots file and applies it to running bots."""

    def __init__(self, config: BotsConfig, bots: Sequence[RunningBot]) -> None:
        self.config = config
        self.bots = list(bots)
        self.reloads = 0  # applied reloads, for tests and logs

    def read(self) -> BotsConfig | None:
        """The file as it is now, or ``None`` after logging (one line) why it does not load."""
        try:
            return load_bots(self.config.path)
        except BotsFileError as exc:
            log.error(
                "bots file edit ignored, still running the previous version: %s", " | ".join(exc.problems)
            )
        except ConfigError as exc:
            log.error("bots file edit ignored, still running the previous version: %s", exc)
        return None

    def apply(self, config: BotsConfig) -> None:
        """Give every running bot its new profile; new turns use it."""
        for running in self.bots:
            entry = config.bots.get(running.entry.name)
            if entry is None:
                log.warning(
                    "bot %s is no longer in the bots file; it runs until a restart", running.entry.name
                )
                continue
            if entry.platforms != running.entry.platforms or entry.enabled != running.entry.enabled:
                log.warning("bot %s: platform or enabled changes apply at the next restart", entry.name)
            engine = running.engine
            profile = entry.profile.with_settings(running.settings)
            engine.bot = fit_to_window(profile, engine.bot.window, running.settings, engine.counter)
            running.entry = entry
        for name in sorted(set(config.bots) - {running.entry.name for running in self.bots}):
            log.warning("bot %s was added to the bots file; it starts at the next restart", name)
        self.config = config
        self.reloads += 1
        log.info("bots file %s reloaded; new turns use it", config.path)

    def watched(self) -> set[Path]:
        """The files whose change triggers a reload: the bots file and the prompt files it names."""
        return {Path(path).resolve() for path in (self.config.path, *self.config.sources)}

    async def watch(self, *, debounce_ms: int = 300, stop: asyncio.Event | None = None) -> None:
        """Reload on every change of a watched file until cancelled (or ``stop`` is set).

        Folders are watched rather than files: editors save by writing a new file and renaming it over the
        old one, which a watch on the old file would miss.
        """
        while stop is None or not stop.is_set():
            files = self.watched()
            folders = sorted({str(path.parent) for path in files})  # resolved: changes arrive as such
            async for changes in watchfiles.awatch(*folders, debounce=debounce_ms, stop_event=stop):
                if any(Path(path) in files for _, path in changes):
                    config = await asyncio.to_thread(self.read)  # reads files: off the event loop
                    if config is not None:
                        self.apply(config)
                    if self.watched() != files:
                        break  # the file now names other prompt files: watch those
