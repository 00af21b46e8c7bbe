"""``chatbot review``: the conversations flagged for review, each with the messages around the flag."""

from __future__ import annotations

import argparse
import shutil
import textwrap
import time
from pathlib import Path

from bots.commands.review_export import exported_cases, write_cases
from bots.settings import Settings
from core.storage_url import describe_storage, nothing_stored, storage_for
from core.store import DOWNVOTE_PHRASE, ContextMessage, ReviewFlag, ReviewStore
from core.turn import TurnStatus
from features.review.flags import STATUS_PREFIX

NAME = "review"
HELP = "list conversations flagged for review (a user said 'that is wrong', a guard blocked a message)"
CONSOLE_LOG_LEVEL = "WARNING"
MAX_CHARS = 600


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bot", help="only this bot's flags")
    parser.add_argument("--all", action="store_true", help="include resolved flags")
    parser.add_argument(
        "--resolve", type=int, nargs="+", metavar="ID", help="mark these flags resolved (and list nothing)"
    )
    parser.add_argument(
        "--context", type=int, default=6, metavar="N", help="messages to show before each flag (default 6)"
    )
    parser.add_argument("--limit", type=int, default=20, metavar="N", help="newest N flags (default 20)")
    parser.add_argument("--full", action="store_true", help=f"do not shorten messages over {MAX_CHARS} chars")
    parser.add_argument(
        "--export",
        type=Path,
        metavar="FILE",
        help="write the turns users rated 👎 as evaluation cases for chatbot eval (and list nothing)",
    )


async def run(args: argparse.Namespace, settings: Settings) -> int:
    if nothing_stored(settings.database(), settings.db_path):
        where = describe_storage(settings.database(), settings.db_path)
        print(f"No database at {where}: nothing has been recorded yet.")
        return 0
    store = storage_for(settings.database(), settings.db_path)
    await store.open()  # brings an older database's schema up to date
    try:
        if args.resolve:
            return await _resolve(store.review, args.resolve)
        if args.export:
            return await _export(store.review, args)
        return await _list(store.review, args)
    finally:
        await store.close()


async def _resolve(repository: ReviewStore, ids: list[int]) -> int:
    missing = 0
    for flag_id in ids:
        if await repository.resolve(flag_id):
            print(f"Resolved #{flag_id}.")
        else:
            print(f"No flag #{flag_id}.")
            missing += 1
    return 1 if missing else 0


async def _export(repository: ReviewStore, args: argparse.Namespace) -> int:
    data = await exported_cases(
        repository,
        bot=args.bot.lower() if args.bot else None,
        include_resolved=args.all,
        context=args.context,
    )
    if data is None:
        print("No turns rated 👎" + (f" for bot {args.bot}" if args.bot else "") + ": nothing exported.")
        return 0
    write_cases(args.export, data)
    count = len(data["cases"])
    print(
        f"Wrote {count} evaluation case{'s' if count != 1 else ''} to {args.export}. "
        f"Run them with: chatbot eval {args.export}"
    )
    return 0


async def _list(repository: ReviewStore, args: argparse.Namespace) -> int:
    limit = max(1, args.limit)
    bot = args.bot.lower() if args.bot else None
    flags = await repository.flags(bot=bot, include_resolved=args.all, limit=limit)
    which = "flags" if args.all else "open flags"
    scope = f" for bot {args.bot}" if args.bot else ""
    if not flags:
        print(f"No {which}{scope}.")
        return 0
    total = await repository.count_open(bot=bot)
    shown = f"; showing the newest {len(flags)} (--limit N for more)" if len(flags) == limit else ""
    print(
        f"{total} open flag{'s' if total != 1 else ''}{scope}{shown}. "
        "Mark one reviewed with: chatbot review --resolve ID"
    )
    width = max(60, min(shutil.get_terminal_size((100, 24)).columns, 120))
    for flag in flags:
        print()
        messages = await repository.context(flag, before=args.context)
        print(format_flag(flag, messages, width=width, full=args.full))
    return 0


def _when(timestamp: float, pattern: str = "%Y-%m-%d %H:%M") -> str:
    return time.strftime(pattern, time.localtime(timestamp))


def describe_reason(phrase: str) -> str:
    if phrase == DOWNVOTE_PHRASE:
        return "the user rated the reply 👎"
    if phrase.startswith(STATUS_PREFIX):
        status = phrase.removeprefix(STATUS_PREFIX)
        return (
            f"the turn was {status} by a guard" if status == TurnStatus.BLOCKED else f"turn status {status}"
        )
    return f'the user said "{phrase}"'


def format_flag(
    flag: ReviewFlag, messages: list[ContextMessage], *, width: int = 100, full: bool = False
) -> str:
    """One flag as terminal text: a header line, the trigger, then the conversation around it."""
    where = " ".join(
        part
        for part in (
            flag.bot or "?",
            f"on {flag.platform}" if flag.platform else "",
        )
        if part
    ) + (f", user {flag.user_id}" if flag.user_id else "")
    state = "  [resolved]" if flag.resolved else ""
    lines = [
        f"#{flag.id}  {_when(flag.turn_started_at)}  {where}{state}",
        f"    session {flag.session_id}",
        f"    why: {describe_reason(flag.phrase)}",
    ]
    if not messages:
        lines.append("    (the conversation is no longer stored)")
        lines.append("    user: " + _shorten(flag.user_text, full))
        return "\n".join(lines)
    day = _when(flag.turn_started_at, "%Y-%m-%d")
    for message in messages:
        stamp = _when(
            message.created_at, "%H:%M" if _when(message.created_at, "%Y-%m-%d") == day else "%m-%d %H:%M"
        )
        who = "user" if message.role == "user" else "bot "
        mark = ">>" if message.flagged else "  "
        note = ""
        if not message.complete:
            note = "[blocked] " if message.role == "user" else "[incomplete or withdrawn] "
        prefix = f"  {mark} {stamp} {who}  "
        lines.extend(_wrap(note + _shorten(message.content, full), prefix, width))
    return "\n".join(lines)


def _shorten(text: str, full: bool) -> str:
    if full or len(text) <= MAX_CHARS:
        return text
    return f"{text[:MAX_CHARS]}… ({len(text) - MAX_CHARS:,} more characters; --full shows all)"


def _wrap(text: str, prefix: str, width: int) -> list[str]:
    indent = " " * len(prefix)
    out: list[str] = []
    for paragraph in text.splitlines() or [""]:
        wrapped = textwrap.wrap(paragraph, width=max(20, width - len(prefix))) or [""]
        out.extend(wrapped)
    return [(prefix if i == 0 else indent) + line for i, line in enumerate(out)]
