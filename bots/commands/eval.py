"""``chatbot eval``: run a bot's evaluation cases against the configured model; exit 1 if any fails.

Each case runs through the real engine (with every feature, so guardrails apply) in its own fresh session,
against a temporary database that holds a copy of the bot's knowledge base and nothing else: real
conversations are never read or written. See docs/evaluation.md for the cases format.
"""

from __future__ import annotations

import argparse
import fnmatch
import logging
import shutil
import tempfile
import time
from pathlib import Path

from bots.app import open_engine
from bots.registry import bot_names_help, get_entry
from bots.settings import Settings
from core.errors import ConfigError
from core.sqlite_store import SQLiteStore
from core.storage_url import nothing_stored, storage_for
from features.evaluation.evaluator import (
    CaseResult,
    EvalCase,
    Evaluator,
    Judge,
    load_suite,
    report_json,
    seed_knowledge,
)

NAME = "eval"
HELP = "run a bot's evaluation cases (input / expectation pairs) and print a pass/fail table"
CONSOLE_LOG_LEVEL = "ERROR"
CASES_FILE = "eval_cases.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "cases", nargs="?", type=Path, help=f"cases file (default <the bot's data folder>/{CASES_FILE})"
    )
    parser.add_argument(
        "--bot", help=f"which bot: {bot_names_help()}; default: the cases file's bot, or CHATBOT_BOT"
    )
    parser.add_argument(
        "--judge",
        action="store_true",
        help="grade refuses / on_topic with the judge model instead of heuristics",
    )
    parser.add_argument("--judge-model", help="model for the judge (default: the bot's configured model)")
    parser.add_argument(
        "--only", metavar="PATTERN", help="only cases whose name matches (glob, e.g. 'adv-*')"
    )
    parser.add_argument(
        "--concurrency", type=int, default=4, metavar="N", help="cases run at once (default 4)"
    )
    parser.add_argument(
        "--report", type=Path, metavar="PATH", help="also write every reply and check as JSON"
    )
    parser.add_argument(
        "--no-knowledge",
        action="store_true",
        help="start from an empty database instead of a copy of the knowledge base",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="show every reply, not only failures")


def _select(cases: tuple[EvalCase, ...], pattern: str | None) -> list[EvalCase]:
    if not pattern:
        return list(cases)
    wildcard = pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"
    return [case for case in cases if fnmatch.fnmatchcase(case.name, wildcard)]


async def copy_knowledge(source_path: Path, target_path: Path, source_url: str | None = None) -> list[str]:
    """The scratch database (a SQLite file, whatever the deployment uses: PostgreSQL at ``source_url`` or
    SQLite at ``source_path``) gets a copy of the knowledge base, and nothing about users."""
    source, target = storage_for(source_url, source_path), SQLiteStore(target_path)
    await source.open()  # brings an older database's schema up to date
    try:
        await target.open()
        try:
            return await seed_knowledge(source.knowledge, target.knowledge)
        finally:
            await target.close()
    finally:
        await source.close()


async def run(args: argparse.Namespace, settings: Settings) -> int:
    bot_name = args.bot
    if args.cases is None:
        bot_name = bot_name or settings.bot
        path = get_entry(bot_name).data_dir / CASES_FILE
    else:
        path = args.cases
    suite = load_suite(path)
    bot_name = get_entry(bot_name or suite.bot or settings.bot).name
    cases = _select(suite.cases, args.only)
    if not cases:
        raise ConfigError(f"no case in {path} matches {args.only!r}")
    run_id = time.strftime("%Y%m%d-%H%M%S")

    with tempfile.TemporaryDirectory(prefix="chatbot-eval-") as scratch:
        db_path = Path(scratch) / "eval.db"
        kept: list[str] = []
        if not nothing_stored(settings.database(), settings.db_path) and not args.no_knowledge:
            kept = await copy_knowledge(settings.db_path, db_path, settings.database())
        eval_settings = settings.model_copy(
            update={"db_path": db_path, "database_url": None, "metrics_port": None}
        )
        turn_log = logging.getLogger("chatbot.turns")
        level = turn_log.level
        turn_log.setLevel(logging.WARNING)  # evaluation turns are not conversations: keep them out of the log
        try:
            async with open_engine(eval_settings, bot_name, check_model=True) as engine:
                model = engine.bot.model_name
                judge_model = args.judge_model or model
                judge = Judge(engine.model, judge_model, engine.bot.description)
                evaluator = Evaluator(
                    engine,
                    suite,
                    run_id=run_id,
                    judge=judge,
                    judge_all=args.judge,
                    concurrency=args.concurrency,
                )
                checks = (
                    f"refuses / on_topic by {judge_model}"
                    if args.judge
                    else "refuses / on_topic by heuristics"
                )
                print(
                    f"Evaluating {bot_name} ({engine.bot.model_name}) on {len(cases)} case"
                    f"{'s' if len(cases) != 1 else ''} from {path}; {checks}"
                    + ("; with a copy of the knowledge base" if kept else "")
                )
                table = Table(cases)
                print(table.header())
                started = time.monotonic()
                results = await evaluator.run(
                    cases, lambda index, result: print(table.row(index, result), flush=True)
                )
                elapsed = time.monotonic() - started
        finally:
            turn_log.setLevel(level)

    print(failure_details(results, verbose=args.verbose))
    failed = sum(r.outcome == "FAIL" for r in results)
    errors = sum(r.outcome == "ERROR" for r in results)
    passed = len(results) - failed - errors
    print(f"{passed} passed, {failed} failed, {errors} error{'s' if errors != 1 else ''} in {elapsed:.1f} s")
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(
            report_json(
                results, bot=bot_name, model=model, judge_model=judge_model, cases_file=str(path), run=run_id
            ),
            encoding="utf-8",
        )
        print(f"Report written to {args.report}")
    return 0 if passed == len(results) else 1


class Table:
    """The pass/fail table, printed one row at a time as results arrive."""

    def __init__(self, cases: list[EvalCase]) -> None:
        self.index_width = len(str(len(cases)))
        self.name_width = max(4, *(len(case.name) for case in cases))
        self.width = max(80, shutil.get_terminal_size((120, 24)).columns)

    def header(self) -> str:
        return (
            f"\n{'#'.rjust(self.index_width)}  {'case'.ljust(self.name_width)}  result  time    why it failed\n"
            + f"{'-' * self.index_width}  {'-' * self.name_width}  ------  ------  {'-' * 13}"
        )

    def row(self, index: int, result: CaseResult) -> str:
        why = result.error or "; ".join(
            f"{check.name}: {check.detail}" if check.detail else check.name for check in result.failures
        )
        line = (
            f"{str(index).rjust(self.index_width)}  {result.case.name.ljust(self.name_width)}  "
            f"{result.outcome.ljust(6)}  {result.seconds:5.1f}s  {why}"
        ).rstrip()
        return line if len(line) <= self.width else line[: self.width - 1] + "…"


def failure_details(results: list[CaseResult], *, verbose: bool = False) -> str:
    """The conversation and every failed check of each failed case (of every case when ``verbose``)."""
    shown = [r for r in results if verbose or not r.passed]
    if not shown:
        return ""
    blocks = []
    for result in shown:
        lines = [f"{result.outcome}  {result.case.name}"]
        lines += [f"  user: {_one_line(turn, 300)}" for turn in result.case.turns]
        lines.append(f"  bot:  {_one_line(result.reply, 600)}")
        if result.error:
            lines.append(f"  ✗ {result.error}")
        for check in result.checks:
            if not check.passed or verbose:
                mark = "✓" if check.passed else "✗"
                lines.append(f"  {mark} {check.name}" + (f": {check.detail}" if check.detail else ""))
        blocks.append("\n".join(lines))
    return "\n" + "\n\n".join(blocks) + "\n"


def _one_line(text: str, limit: int) -> str:
    text = " ".join(text.split()) or "(empty)"
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"
