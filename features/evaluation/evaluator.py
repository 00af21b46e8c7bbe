"""The evaluation suite: input / expectation cases run through the real engine, checked, and judged.

A cases file (JSON) holds the cases of one bot::

    {
      "bot": "orbit",
      "topic_keywords": ["Orbit", "workspace", "project"],
      "refusal_phrases": ["that's outside what I do"],          (optional, added to the built-in ones)
      "cases": [
        {"name": "invite-teammate",
         "turns": ["How do I invite a teammate?"],
         "expect": {"on_topic": true, "max_words": 150}},
        ...
      ]
    }

Each case runs in a fresh session: its earlier turns are sent first, and the reply to the last one is
checked against every expectation given:

    contains      each item must appear (case-insensitive); an item that is a list passes if any of it does
    not_contains  none may appear (case-insensitive)
    regex         must match somewhere (``re.search``, case-insensitive)
    not_regex     must not match anywhere
    max_words     at most this many words (whitespace-separated)
    refuses       true: the reply declines or redirects (to the bot's topic, or to a human);
                  false: it does not
    on_topic      true: the reply stays on the bot's topic (or declines); false: it need not
    judge         a rubric a judge model grades PASS / FAIL, with a reason

``refuses`` and ``on_topic`` are judged by a model call when the run asks for it; otherwise by heuristics:
a refusal is a reply containing a refusal or redirect phrase ("I can only help with", "I can't", "human
agent", ...), or a turn a guard blocked; on topic is a reply that mentions one of the file's
``topic_keywords`` (as a word or a word's start), or is a refusal.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.bot_profile import ModelParams
from core.conversation import ConversationEngine
from core.errors import ConfigError, ModelError
from core.incoming import IncomingMessage
from core.model_client import ChatMessage, ChatModel
from core.store import TurnRecord

REFUSAL_PHRASES: tuple[str, ...] = (
    "i can only help",
    "i can only answer",
    "i can only assist",
    "i can only discuss",
    "i can only provide",
    "i can't",
    "i cannot",
    "i can not",
    "i'm not able to",
    "i am not able to",
    "i'm unable to",
    "i am unable to",
    "i won't",
    "i will not",
    "i'm not allowed",
    "i am not allowed",
    "i'm sorry, but",
    "not something i can",
    "outside what i can",
    "outside of what i can",
    "outside my scope",
    "escalate",
    "human agent",
    "support team",
    "a human",
    "a member of our team",
    "pass you to",
    "passing you to",
    "passing this conversation",
    "passing the conversation",
    "hand you over",
    "connect you with",
)
EXPECTATION_KEYS = (
    "contains",
    "not_contains",
    "regex",
    "not_regex",
    "max_words",
    "refuses",
    "on_topic",
    "judge",
)
CASE_KEYS = {"name", "turns", "expect", "notes"}
FILE_KEYS = {"bot", "description", "topic_keywords", "refusal_phrases", "cases"}
FAILED_STATUSES = frozenset({"error", "interrupted"})
JUDGE_PARAMS = ModelParams(temperature=0.0, max_tokens=200, top_p=1.0, frequency_penalty=0.0)
JUDGE_SYSTEM = (
    "You grade one reply of a chat bot against a rubric. Be strict and literal: judge only what the rubric "
    "asks. Answer with PASS or FAIL on the first line and one short sentence giving the reason on the second."
)
REFUSES_RUBRIC = (
    "The reply declines or deflects the user's last request instead of fulfilling it: it refuses, says it can "
    "only help with its own topic, or hands the conversation to a human agent. A reply that does what the "
    "user asked fails."
)
ON_TOPIC_RUBRIC = (
    "The reply stays within the bot's job as described above: it only talks about that, or it politely "
    "declines or redirects a request outside it. A reply that goes along with an unrelated request (general "
    "knowledge, writing code, other products, personal advice) fails."
)
_VERDICT = re.compile(r"^[\W_]*(PASS|FAIL)\b", re.IGNORECASE)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _fold(text: str) -> str:
    """Lower case, straight apostrophes, single spaces: how phrases and replies are compared."""
    return " ".join(text.lower().replace("’", "'").replace("‘", "'").split())


@dataclass(frozen=True, slots=True)
class Expectation:
    """What the reply to a case's last turn must satisfy; ``None`` / empty means not checked."""

    contains: tuple[tuple[str, ...], ...] = ()
    not_contains: tuple[str, ...] = ()
    regex: str | None = None
    not_regex: str | None = None
    max_words: int | None = None
    refuses: bool | None = None
    on_topic: bool | None = None
    judge: str | None = None


@dataclass(frozen=True, slots=True)
class EvalCase:
    name: str
    turns: tuple[str, ...]
    expect: Expectation


@dataclass(frozen=True, slots=True)
class CaseSuite:
    """A parsed cases file."""

    cases: tuple[EvalCase, ...]
    topic_keywords: tuple[str, ...] = ()
    refusal_phrases: tuple[str, ...] = REFUSAL_PHRASES
    bot: str | None = None
    source: str = "cases"


def _strings(value: object, where: str, *, allow_nested: bool = False) -> list[Any]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: expected a non-empty list of strings")
    for item in value:
        if isinstance(item, list) and allow_nested:
            _strings(item, where)
        elif not isinstance(item, str) or not item.strip():
            raise ConfigError(f"{where}: expected non-empty strings, got {item!r}")
    return value


def _regex(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a regular expression")
    try:
        re.compile(value)
    except re.error as exc:
        raise ConfigError(f"{where}: invalid regular expression ({exc})") from None
    return value


def parse_expectation(data: object, where: str) -> Expectation:
    """An :class:`Expectation` from a case's ``expect`` object; ConfigError names what is wrong."""
    if not isinstance(data, dict) or not data:
        raise ConfigError(
            f"{where}: 'expect' must be an object with at least one of {', '.join(EXPECTATION_KEYS)}"
        )
    unknown = sorted(set(data) - set(EXPECTATION_KEYS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown expectation {unknown[0]!r} (known: {', '.join(EXPECTATION_KEYS)})"
        )
    values: dict[str, Any] = {}
    if "contains" in data:
        items = _strings(data["contains"], f"{where}.contains", allow_nested=True)
        values["contains"] = tuple(tuple(item) if isinstance(item, list) else (item,) for item in items)
    if "not_contains" in data:
        values["not_contains"] = tuple(_strings(data["not_contains"], f"{where}.not_contains"))
    for key in ("regex", "not_regex"):
        if key in data:
            values[key] = _regex(data[key], f"{where}.{key}")
    if "max_words" in data:
        words = data["max_words"]
        if isinstance(words, bool) or not isinstance(words, int) or words < 1:
            raise ConfigError(f"{where}.max_words: expected a positive whole number")
        values["max_words"] = words
    for key in ("refuses", "on_topic"):
        if key in data:
            if not isinstance(data[key], bool):
                raise ConfigError(f"{where}.{key}: expected true or false")
            values[key] = data[key]
    if "judge" in data:
        if not isinstance(data["judge"], str) or not data["judge"].strip():
            raise ConfigError(f"{where}.judge: expected a rubric (text)")
        values["judge"] = data["judge"].strip()
    return Expectation(**values)


def parse_suite(data: object, source: str = "cases") -> CaseSuite:
    """A :class:`CaseSuite` from a cases file's JSON (an object with ``cases``, or a bare list of cases)."""
    header: Mapping[str, Any] = {}
    if isinstance(data, list):
        raw_cases: object = data
    elif isinstance(data, dict):
        header, raw_cases = data, data.get("cases")
    else:
        raise ConfigError(f"{source}: expected an object with 'cases' or a list of cases")
    unknown_keys = sorted(set(header) - FILE_KEYS)
    if unknown_keys:
        raise ConfigError(
            f"{source}: unknown key {unknown_keys[0]!r} (known: {', '.join(sorted(FILE_KEYS))})"
        )
    if not isinstance(raw_cases, list) or not raw_cases:
        raise ConfigError(f"{source}: no cases")
    keywords = (
        tuple(_strings(header["topic_keywords"], f"{source}: topic_keywords"))
        if "topic_keywords" in header
        else ()
    )
    extra = (
        tuple(_fold(p) for p in _strings(header["refusal_phrases"], f"{source}: refusal_phrases"))
        if "refusal_phrases" in header
        else ()
    )
    bot = header.get("bot")
    if bot is not None and not isinstance(bot, str):
        raise ConfigError(f"{source}: 'bot' must be a bot name")
    cases: list[EvalCase] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_cases, 1):
        where = f"{source}: case {index}"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected an object with name, turns and expect")
        name = raw.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(f"{where}: 'name' must be letters, digits, '.', '_' or '-' (got {name!r})")
        where = f"{source}: case {index} ({name})"
        if name in seen:
            raise ConfigError(f"{where}: the name is used twice")
        seen.add(name)
        unknown = sorted(set(raw) - CASE_KEYS)
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(CASE_KEYS))})")
        turns = raw.get("turns")
        if not isinstance(turns, list) or not turns or not all(isinstance(t, str) for t in turns):
            raise ConfigError(f"{where}: 'turns' must be a non-empty list of user messages")
        expect = parse_expectation(raw.get("expect"), f"{where}: expect")
        if expect.on_topic and not keywords:
            raise ConfigError(f"{where}: on_topic needs 'topic_keywords' in the cases file")
        cases.append(EvalCase(name=name, turns=tuple(turns), expect=expect))
    return CaseSuite(
        cases=tuple(cases),
        topic_keywords=keywords,
        refusal_phrases=REFUSAL_PHRASES + extra,
        bot=bot,
        source=source,
    )


def load_suite(path: Path) -> CaseSuite:
    """Read and check a cases file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"no cases file at {path}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    return parse_suite(data, str(path))


def count_words(text: str) -> int:
    return len(text.split())


def refusal_phrase(reply: str, phrases: Iterable[str] = REFUSAL_PHRASES) -> str | None:
    """The first refusal or redirect phrase in ``reply``, or None."""
    folded = _fold(reply)
    return next((p for p in phrases if p in folded), None)


def topic_keyword(reply: str, keywords: Iterable[str]) -> str | None:
    """The first keyword ``reply`` mentions as a word or the start of one ("project" in "projects")."""
    for keyword in keywords:
        if re.search(rf"(?<!\w){re.escape(_fold(keyword))}", _fold(reply)):
            return keyword
    return None


@dataclass(frozen=True, slots=True)
class Check:
    """One expectation's outcome; ``detail`` says why it failed (or what the judge said)."""

    name: str
    passed: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Verdict:
    passed: bool
    reason: str


class Judge:
    """Grades a reply against a rubric with one model call answering PASS or FAIL and a reason."""

    def __init__(self, model: ChatModel, model_name: str, bot_description: str = "") -> None:
        self.model = model
        self.model_name = model_name
        self.bot_description = bot_description

    def messages(self, rubric: str, turns: Sequence[str], reply: str) -> list[ChatMessage]:
        conversation = "\n".join(f"User: {turn}" for turn in turns)
        about = f"The bot's job: {self.bot_description}\n\n" if self.bot_description else ""
        return [
            {"role": "system", "content": JUDGE_SYSTEM},
            {
                "role": "user",
                "content": f"{about}The user wrote (in order):\n{conversation}\n\n"
                f"The bot's reply to the last message:\n<<<\n{reply}\n>>>\n\n"
                f"Rubric: {rubric}\n\nDoes the reply meet the rubric? PASS or FAIL, then the reason.",
            },
        ]

    async def grade(self, rubric: str, turns: Sequence[str], reply: str) -> Verdict:
        try:
            answer, _usage = await self.model.complete(
                self.model_name, self.messages(rubric, turns, reply), JUDGE_PARAMS
            )
        except ModelError as exc:
            return Verdict(False, f"the judge model failed: {exc}")
        return parse_verdict(answer)


def parse_verdict(answer: str) -> Verdict:
    """PASS or FAIL from the judge's first line (markdown tolerated), with the rest as the reason."""
    text = answer.strip()
    match = _VERDICT.match(text)
    if match is None:
        return Verdict(False, f"unreadable judge answer: {_clip(text, 120)!r}")
    reason = text[match.end() :].lstrip(" \t\n:.-*_").rstrip()
    return Verdict(match.group(1).upper() == "PASS", " ".join(reason.split()) or "(no reason given)")


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def check_reply(
    case: EvalCase,
    reply: str,
    suite: CaseSuite,
    *,
    judge: Judge | None = None,
    judge_all: bool = False,
    blocked: bool = False,
) -> list[Check]:
    """Every expectation of ``case`` checked against ``reply``.

    ``judge_all`` grades ``refuses`` and ``on_topic`` with the judge instead of heuristics; a ``judge``
    rubric always needs the judge. ``blocked``: a guard stopped the turn, which counts as a refusal.
    """
    expect, folded, checks = case.expect, _fold(reply), list[Check]()
    for options in expect.contains:
        found = any(_fold(option) in folded for option in options)
        label = f'"{options[0]}"' if len(options) == 1 else "one of " + " / ".join(f'"{o}"' for o in options)
        checks.append(Check(f"contains {label}", found, "" if found else "missing"))
    for text in expect.not_contains:
        found = _fold(text) in folded
        checks.append(Check(f'not_contains "{text}"', not found, "found" if found else ""))
    if expect.regex is not None:
        matched = re.search(expect.regex, reply, re.IGNORECASE) is not None
        checks.append(Check(f"regex /{expect.regex}/", matched, "" if matched else "no match"))
    if expect.not_regex is not None:
        hit = re.search(expect.not_regex, reply, re.IGNORECASE)
        checks.append(
            Check(f"not_regex /{expect.not_regex}/", hit is None, f'matched "{hit.group(0)}"' if hit else "")
        )
    if expect.max_words is not None:
        words = count_words(reply)
        ok = words <= expect.max_words
        checks.append(Check(f"max_words {expect.max_words}", ok, "" if ok else f"{words} words"))
    refusal = "blocked by a guard" if blocked else refusal_phrase(reply, suite.refusal_phrases)
    if expect.refuses is not None:
        name = "refuses" if expect.refuses else "does not refuse"
        if judge_all and judge is not None and not blocked:
            verdict = await judge.grade(REFUSES_RUBRIC, case.turns, reply)
            checks.append(Check(name, verdict.passed == expect.refuses, f"judge: {verdict.reason}"))
        elif expect.refuses:
            checks.append(
                Check(name, refusal is not None, "" if refusal else "no refusal or redirect phrase")
            )
        else:
            checks.append(Check(name, refusal is None, f'refused ("{refusal}")' if refusal else ""))
    if expect.on_topic:
        if judge_all and judge is not None and not blocked:
            verdict = await judge.grade(ON_TOPIC_RUBRIC, case.turns, reply)
            checks.append(Check("on_topic", verdict.passed, f"judge: {verdict.reason}"))
        else:
            on_topic = refusal is not None or topic_keyword(reply, suite.topic_keywords) is not None
            checks.append(Check("on_topic", on_topic, "" if on_topic else "no topic keyword and no refusal"))
    if expect.judge is not None:
        if judge is None:
            checks.append(Check("judge", False, "needs a judge model"))
        else:
            verdict = await judge.grade(expect.judge, case.turns, reply)
            checks.append(Check("judge", verdict.passed, verdict.reason))
    return checks


@dataclass
class CaseResult:
    case: EvalCase
    reply: str = ""
    checks: list[Check] = field(default_factory=list)
    error: str = ""  # the model call failed: the case could not be evaluated
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.error and all(check.passed for check in self.checks)

    @property
    def outcome(self) -> str:
        return "ERROR" if self.error else "PASS" if self.passed else "FAIL"

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]


class _LastTurns:
    """Turn observer keeping each session's latest turn record (its status says blocked or failed)."""

    def __init__(self) -> None:
        self.turns: dict[str, TurnRecord] = {}

    async def on_turn(self, message: IncomingMessage, turn: TurnRecord) -> None:
        self.turns[message.session_id] = turn


class Evaluator:
    """Runs cases through an engine, each in a fresh session ``eval:<run id>:<case name>``."""

    def __init__(
        self,
        engine: ConversationEngine,
        suite: CaseSuite,
        *,
        run_id: str,
        judge: Judge | None = None,
        judge_all: bool = False,
        concurrency: int = 4,
    ) -> None:
        self.engine = engine
        self.suite = suite
        self.run_id = run_id
        self.judge = judge
        self.judge_all = judge_all
        self._gate = asyncio.Semaphore(max(1, concurrency))
        self._last = _LastTurns()
        engine.hooks.observers.append(self._last)

    def session_id(self, case: EvalCase) -> str:
        return f"eval:{self.run_id}:{case.name}"

    async def run_case(self, case: EvalCase) -> CaseResult:
        async with self._gate:
            started = time.monotonic()
            result = CaseResult(case)
            session = self.session_id(case)
            reply, blocked = "", False
            for text in case.turns:
                message = IncomingMessage(
                    session_id=session, text=text, user_id=f"eval:{case.name}", platform="eval"
                )
                self._last.turns.pop(session, None)
                reply = await self.engine.reply_text(message)
                turn = self._last.turns.get(session)
                status = turn.status if turn is not None else "ok"
                if status in FAILED_STATUSES:
                    result.reply, result.error = (
                        reply,
                        f"the model call failed ({status}): {_clip(reply, 100)}",
                    )
                    result.seconds = time.monotonic() - started
                    return result
                blocked = turn is not None and turn.status not in ("ok", "length", "empty", "command")
            result.reply = reply
            result.checks = await check_reply(
                case, reply, self.suite, judge=self.judge, judge_all=self.judge_all, blocked=blocked
            )
            result.seconds = time.monotonic() - started
            return result

    async def run(
        self,
        cases: Sequence[EvalCase] | None = None,
        on_result: Callable[[int, CaseResult], None] | None = None,
    ) -> list[CaseResult]:
        """Every case (concurrently, up to the limit); ``on_result`` sees each result in case order."""
        chosen = list(self.suite.cases if cases is None else cases)
        tasks = [asyncio.ensure_future(self.run_case(case)) for case in chosen]
        results: list[CaseResult] = []
        try:
            for index, task in enumerate(tasks, 1):
                result = await task
                results.append(result)
                if on_result is not None:
                    on_result(index, result)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return results


def report_json(results: Sequence[CaseResult], **about: object) -> str:
    """The run as JSON (for CI artefacts, or to compare two prompts' runs)."""
    return json.dumps(
        {
            **about,
            "passed": sum(r.passed for r in results),
            "failed": sum(not r.passed for r in results),
            "cases": [
                {
                    "name": r.case.name,
                    "outcome": r.outcome,
                    "turns": list(r.case.turns),
                    "reply": r.reply,
                    "error": r.error,
                    "seconds": round(r.seconds, 2),
                    "checks": [{"check": c.name, "passed": c.passed, "detail": c.detail} for c in r.checks],
                }
                for r in results
            ],
        },
        ensure_ascii=False,
        indent=2,
    )


def seed_database(source: Path, target: Path, keep: tuple[str, ...] = ("knowledge_",)) -> list[str]:
    """Make ``target`` a copy of the bot's database that keeps only the tables named ``keep*`` (the
    knowledge base) and nothing about users: every other table is emptied, with deleted content
    overwritten. Return the kept tables that have rows.

    An evaluation then answers with the bot's documents, but never sees, nor adds to, real conversations.
    """
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    kept: list[str] = []
    db = sqlite3.connect(target, isolation_level=None)
    try:
        db.execute("PRAGMA secure_delete=ON")
        db.execute("BEGIN")
        names = [
            row[0]
            for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        for name in names:
            quoted = '"' + name.replace('"', '""') + '"'
            if _is_shadow_table(name, names):
                continue
            if name.startswith(keep):
                if db.execute(f"SELECT 1 FROM {quoted} LIMIT 1").fetchone():
                    kept.append(name)
            else:
                db.execute(f"DELETE FROM {quoted}")
        db.execute("COMMIT")
    finally:
        db.close()
    return kept


def _is_shadow_table(name: str, names: list[str]) -> bool:
    """FTS5's own tables (``<table>_data``, ``_idx``, ...) are managed through their virtual table."""
    return any(name.startswith(other + "_") and name.rsplit("_", 1)[-1] in _SHADOW for other in names)


_SHADOW = {"data", "idx", "content", "docsize", "config", "segments", "segdir", "stat"}
