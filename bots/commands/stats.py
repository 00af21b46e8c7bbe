"""``chatbot stats``: turns, users, latency, tokens and cost per day, platform and bot, from the ``turns``
table, as terminal tables and a bar chart of turns per day.

Definitions: a day is a local calendar day; ``users`` counts distinct platform-qualified user ids;
latency percentiles are nearest-rank over the turns that called the model (a turn a guard or limit stopped
before the model has no latency); ``errors`` are turns whose model call failed or was interrupted;
``blocked`` are turns a guard or a limit stopped; ``positive`` is the share of 👍 among the votes on the
window's turns (one per asker per turn, see adapters/feedback.py). Cost comes from the price table (``CHATBOT_PRICES`` over
the built-in one); a model with no price costs 0.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from bots.settings import Settings
from core.storage_url import describe_storage, nothing_stored, storage_for
from core.store import TurnStats, VoteCount
from core.turn import FAILED_STATUSES, stopped
from features.limits.pricing import PriceTable

NAME = "stats"
HELP = "turns, users, latency p50/p95, tokens and cost per day, platform and bot"
CONSOLE_LOG_LEVEL = "WARNING"
BAR_WIDTH = 40
HEADERS = ("turns", "users", "errors", "blocked", "p50 ms", "p95 ms", "prompt tok", "compl tok", "cost $")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--days", type=int, default=7, metavar="N", help="the last N days, today included (default 7)"
    )
    parser.add_argument("--bot", help="only this bot's turns")


Turn = TurnStats  # one turn as the ledger gives it


@dataclass
class Group:
    """Totals of a set of turns."""

    turns: int = 0
    users: set[str] = field(default_factory=set)
    errors: int = 0
    blocked: int = 0
    latencies: list[float] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0

    def add(self, turn: Turn, cost: float) -> None:
        self.turns += 1
        if turn.user_id:
            self.users.add(turn.user_id)
        self.errors += turn.status in FAILED_STATUSES
        self.blocked += stopped(turn.status)
        if turn.model:
            self.latencies.append(turn.latency_ms)
        self.prompt_tokens += turn.prompt_tokens
        self.completion_tokens += turn.completion_tokens
        self.cost += cost

    def cells(self) -> list[str]:
        if not self.turns:
            return ["0", "0", "0", "0", "-", "-", "0", "0", "0.0000"]
        return [
            f"{self.turns:,}",
            f"{len(self.users):,}",
            f"{self.errors:,}",
            f"{self.blocked:,}",
            _ms(percentile(self.latencies, 50)),
            _ms(percentile(self.latencies, 95)),
            f"{self.prompt_tokens:,}",
            f"{self.completion_tokens:,}",
            f"{self.cost:,.4f}",
        ]


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile: the smallest value that at least ``p`` percent of values are at or below."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def render_table(title: str, rows: Sequence[Sequence[str]], headers: Sequence[str] = HEADERS) -> str:
    """A plain-text table: first column left-aligned, the rest right-aligned, two spaces between."""
    all_rows = [[title, *headers], *[list(row) for row in rows]]
    widths = [max(len(row[i]) for row in all_rows) for i in range(len(all_rows[0]))]
    lines = []
    for index, row in enumerate(all_rows):
        cells = [
            row[0].ljust(widths[0]),
            *(cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)),
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def bar_chart(counts: Sequence[tuple[str, int]], width: int = BAR_WIDTH) -> str:
    """One bar per label, scaled to the largest count; the count after each bar."""
    top = max((count for _, count in counts), default=0)
    label_width = max((len(label) for label, _ in counts), default=0)
    lines = []
    for label, count in counts:
        length = 0 if not top else max(1 if count else 0, round(count / top * width))
        lines.append(f"{label.ljust(label_width)} │{'█' * length} {count:,}".rstrip())
    return "\n".join(lines)


def grouped(turns: Iterable[Turn], key: Callable[[Turn], str], prices: PriceTable) -> dict[str, Group]:
    groups: dict[str, Group] = {}
    for turn in turns:
        groups.setdefault(key(turn), Group()).add(
            turn, prices.cost(turn.model, turn.prompt_tokens, turn.completion_tokens)
        )
    return groups


def window_start(days: int, today: date | None = None) -> datetime:
    """Local midnight at the start of the first of the last ``days`` days (today included)."""
    first = (today or date.today()) - timedelta(days=max(1, days) - 1)
    return datetime.combine(first, time.min)


def report(
    turns: list[Turn], *, days: int, prices: PriceTable, bot: str | None = None, today: date | None = None
) -> str:
    """The whole ``chatbot stats`` text for these turns."""
    start = window_start(days, today)
    day_labels = [(start.date() + timedelta(days=i)).isoformat() for i in range(max(1, days))]
    scope = f"bot {bot}" if bot else "all bots"
    heading = f"Turns of {scope}, {day_labels[0]} to {day_labels[-1]} (local time)"
    if not turns:
        return f"{heading}: none recorded."

    def day_of(turn: Turn) -> str:
        return datetime.fromtimestamp(turn.started_at).date().isoformat()

    by_day = grouped(turns, day_of, prices)
    total = Group()
    for turn in turns:
        total.add(turn, prices.cost(turn.model, turn.prompt_tokens, turn.completion_tokens))
    sections = [heading]
    day_rows = [[label, *by_day.get(label, Group()).cells()] for label in day_labels]
    sections.append(render_table("day", [*day_rows, ["all", *total.cells()]]))
    for title, key in (("platform", _platform), ("bot", _bot)):
        groups = grouped(turns, key, prices)
        ordered = sorted(groups.items(), key=lambda item: (-item[1].turns, item[0]))
        rows = [[name, *group.cells()] for name, group in ordered]
        if len(rows) > 1:
            rows.append(["all", *total.cells()])
        sections.append(render_table(title, rows))
    if len(day_labels) > 1:
        sections.append(
            "Turns per day\n" + bar_chart([(label, by_day.get(label, Group()).turns) for label in day_labels])
        )
    return "\n\n".join(sections)


def _platform(turn: Turn) -> str:
    return turn.platform or "(none)"


def _bot(turn: Turn) -> str:
    return turn.bot or "(none)"


async def load_turns(settings: Settings, since: float, until: float, bot: str | None) -> list[Turn]:
    turns, _votes = await load_window(settings, since, until, bot)
    return turns


async def load_window(
    settings: Settings, since: float, until: float, bot: str | None
) -> tuple[list[Turn], list[VoteCount]]:
    """The window's turns and the votes on them."""
    store = storage_for(settings.database(), settings.db_path)
    await store.open()  # brings an older database's schema up to date
    try:
        name = bot.lower() if bot else None
        turns = await store.ledger.turns_between(since, until, bot=name)
        return turns, await store.feedback.vote_counts(since, until, bot=name)
    finally:
        await store.close()


VOTE_HEADERS = ("👍", "👎", "votes", "positive")


def feedback_table(votes: Sequence[VoteCount]) -> str:
    """Votes per bot and platform, with the share of positive ones; "" when nobody voted."""
    if not votes:
        return ""
    rows = []
    for count in sorted(votes, key=lambda c: (c.bot, c.platform)):
        total = count.up + count.down
        share = f"{count.up / total:.0%}" if total else "-"
        rows.append(
            [
                f"{count.bot or '(none)'} on {count.platform or '(none)'}",
                str(count.up),
                str(count.down),
                str(total),
                share,
            ]
        )
    if len(rows) > 1:
        up, down = sum(c.up for c in votes), sum(c.down for c in votes)
        rows.append(
            ["all", str(up), str(down), str(up + down), f"{up / (up + down):.0%}" if up + down else "-"]
        )
    return "Feedback (votes on replies)\n" + render_table("bot on platform", rows, VOTE_HEADERS)


async def run(args: argparse.Namespace, settings: Settings) -> int:
    prices = PriceTable.from_setting(settings.prices)
    if args.days < 1:
        print("--days must be at least 1.")
        return 2
    if nothing_stored(settings.database(), settings.db_path):
        where = describe_storage(settings.database(), settings.db_path)
        print(f"No database at {where}: nothing has been recorded yet.")
        return 0
    start = window_start(args.days)
    end = datetime.combine(date.today() + timedelta(days=1), time.min)
    turns, votes = await load_window(settings, start.timestamp(), end.timestamp(), args.bot)
    print(report(turns, days=args.days, prices=prices, bot=args.bot))
    votes_text = feedback_table(votes)
    if votes_text:
        print("\n" + votes_text)
    return 0
