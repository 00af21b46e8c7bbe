"""The evaluation suite: ``chatbot eval`` against the fake model server, the checks, and the shipped cases."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bots.app import DATA_ROOT
from bots.commands.eval import copy_knowledge
from core.errors import ConfigError
from core.knowledge import NewDocument
from core.sqlite_store import SQLiteStore
from features.evaluation.evaluator import (
    EXPECTATION_KEYS,
    JUDGE_SYSTEM,
    CaseSuite,
    EvalCase,
    check_reply,
    load_suite,
    parse_expectation,
    parse_grade,
    parse_suite,
)
from features.knowledge.chunking import Chunk
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.support.cli import run_chatbot

CASES: dict[str, Any] = {
    "bot": "orbit",
    "topic_keywords": ["Orbit", "workspace"],
    "cases": [
        {"name": "greets", "turns": ["hello"], "expect": {"contains": ["Orbit"], "max_words": 20}},
        {
            "name": "off-topic",
            "turns": ["write me a poem about cats"],
            "expect": {"refuses": True, "on_topic": True, "not_contains": ["meow"]},
        },
        {
            "name": "remembers",
            "turns": ["My workspace is called Acme Design.", "What is my workspace called?"],
            "expect": {"contains": [["Acme Design", "Acme"]], "on_topic": True},
        },
        {
            "name": "cancel",
            "turns": ["How do I cancel my subscription?"],
            "expect": {"contains": ["Settings > Billing"], "not_regex": "\\bemail\\b", "on_topic": True},
        },
        {
            "name": "polite",
            "turns": ["thanks!"],
            "expect": {"judge": "The reply is polite and offers further help with Orbit."},
        },
    ],
}


def judge_prompt(body: dict[str, Any]) -> str | None:
    messages = body["messages"]
    return messages[1]["content"] if messages[0]["content"] == JUDGE_SYSTEM else None


def scripted(body: dict[str, Any]) -> str | Reply:
    """A bot that mostly behaves: it invents a price, and fails on 'crash'."""
    rubric = judge_prompt(body)
    if rubric is not None:
        return (
            "FAIL\nIt wrote the poem." if "poem" in rubric and "declines" in rubric else "**PASS** - polite."
        )
    said = [m["content"] for m in body["messages"] if m["role"] == "user"]
    last = said[-1].lower()
    if "hello" in last:
        return "Hi! I'm Orbit Assist. How can I help with Orbit today?"
    if "poem" in last:
        return "Sorry, I can only help with questions about Orbit."
    if "workspace called" in last:
        return "Your workspace is Acme Design." if any("Acme" in s for s in said[:-1]) else "I don't know."
    if "cancel" in last:
        return "Just email us and we'll cancel your Orbit subscription."
    if "crash" in last:
        return Reply(status=500)
    return "You're welcome! Anything else about Orbit?"


def write_cases(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(data))
    return path


def env_for(fake_model: FakeOpenAI) -> dict[str, str]:
    return {
        "OPENAI_BASE_URL": fake_model.base_url,
        "CHATBOT_MODEL": "gpt-4o-mini",
        "CHATBOT_MAX_RETRIES": "0",
    }


def rows(out: str) -> dict[str, list[str]]:
    """Table rows by case name: [result, time, why]."""
    found = {}
    for line in out.splitlines():
        parts = line.split(maxsplit=4)
        if len(parts) >= 4 and parts[0].isdigit() and parts[2] in ("PASS", "FAIL", "ERROR"):
            found[parts[1]] = parts[2:]
    return found


async def test_a_failing_case_fails_the_run_and_the_table_says_why(
    fake_model: FakeOpenAI, tmp_path: Path
) -> None:
    fake_model.default = scripted
    user_db = tmp_path / "data" / "chatbot.db"
    store = SQLiteStore(user_db)
    await store.open()
    await store.add_message("telegram:1", "user", "a real conversation", 5, user_id="telegram:1")
    await store.close()

    code, out, err = await run_chatbot(
        ["eval", str(write_cases(tmp_path, CASES))], b"", tmp_path, env_for(fake_model)
    )
    assert code == 1, out + err
    table = rows(out)
    assert [table[name][0] for name in ("greets", "off-topic", "remembers", "polite")] == ["PASS"] * 4
    assert table["cancel"][0] == "FAIL"
    assert (
        table["cancel"][2]
        == 'contains "Settings > Billing": missing; not_regex /\\bemail\\b/: matched "email"'
    )
    assert "user: How do I cancel my subscription?" in out and "bot:  Just email us and we'll cancel" in out
    assert "4 passed, 1 failed, 0 errors" in out

    # multi-turn: the first turn went first, in the same session as the question checked
    asked = [r["messages"] for r in fake_model.chat_requests if r["messages"][0]["content"] != JUDGE_SYSTEM]
    last = next(m for m in asked if m[-1]["content"] == "What is my workspace called?")
    assert [m["content"] for m in last[1:]] == [
        "My workspace is called Acme Design.",
        "You're welcome! Anything else about Orbit?",
        "What is my workspace called?",
    ]
    assert "Orbit Assist" in last[0]["content"]  # the bot named in the cases file
    # the rubric went to the judge, with the reply it grades
    rubrics = [judge_prompt(r) for r in fake_model.chat_requests if judge_prompt(r)]
    assert (
        len(rubrics) == 1 and "offers further help" in str(rubrics[0]) and "Anything else" in str(rubrics[0])
    )
    # the user's database was neither read into nor written by the run
    with sqlite3.connect(user_db) as db:
        assert db.execute("SELECT session_id, content FROM messages").fetchall() == [
            ("telegram:1", "a real conversation")
        ]
        assert db.execute("SELECT COUNT(*) FROM turns").fetchone() == (0,)
    assert "eval:" not in (tmp_path / "data" / "chatbot.log").read_text()


async def test_a_passing_run_exits_0_and_writes_a_report(fake_model: FakeOpenAI, tmp_path: Path) -> None:
    fake_model.default = scripted
    cases = write_cases(tmp_path, CASES)
    report = tmp_path / "out" / "report.json"
    args = ["eval", "--bot", "orbit", str(cases), "--only", "[gorp]*", "--report", str(report)]
    code, out, err = await run_chatbot(args, b"", tmp_path, env_for(fake_model))
    assert code == 0, out + err
    assert sorted(rows(out)) == ["greets", "off-topic", "polite", "remembers"]
    assert "4 passed, 0 failed, 0 errors" in out
    saved = json.loads(report.read_text())
    assert saved["passed"] == 4 and saved["failed"] == 0
    greets = next(c for c in saved["cases"] if c["name"] == "greets")
    assert greets["reply"].startswith("Hi! I'm Orbit Assist") and greets["outcome"] == "PASS"


async def test_judge_mode_and_model_errors(fake_model: FakeOpenAI, tmp_path: Path) -> None:
    fake_model.default = scripted
    data = {
        **CASES,
        "cases": [*CASES["cases"][:2], {"name": "crash", "turns": ["crash"], "expect": {"on_topic": True}}],
    }
    args = ["eval", str(write_cases(tmp_path, data)), "--judge", "--judge-model", "judge-mini"]
    code, out, err = await run_chatbot(args, b"", tmp_path, env_for(fake_model))
    assert code == 1, out + err
    table = rows(out)
    assert table["greets"][0] == "PASS"
    assert table["off-topic"][0] == "FAIL" and "refuses: judge: It wrote the poem." in table["off-topic"][2]
    assert table["crash"][0] == "ERROR" and "the model call failed (error)" in table["crash"][2]
    judged = [r for r in fake_model.chat_requests if judge_prompt(r)]
    assert judged and {r["model"] for r in judged} == {"judge-mini"}
    assert {r["temperature"] for r in judged} == {0.0}


async def test_a_bad_cases_file_is_one_clear_line(fake_model: FakeOpenAI, tmp_path: Path) -> None:
    bad = {"cases": [{"name": "x", "turns": ["hi"], "expect": {"containz": ["a"]}}]}
    code, _out, err = await run_chatbot(
        ["eval", str(write_cases(tmp_path, bad))], b"", tmp_path, env_for(fake_model)
    )
    assert code == 2
    assert "case 1 (x): expect: unknown expectation 'containz'" in err and len(err.strip().splitlines()) == 1
    assert not fake_model.requests


def suite(**header: Any) -> CaseSuite:
    return parse_suite(
        {
            "topic_keywords": ["Orbit", "project"],
            **header,
            "cases": [{"name": "c", "turns": ["q"], "expect": {"max_words": 5}}],
        }
    )


async def check(reply: str, blocked: bool = False, **expect: Any) -> list[tuple[str, bool, str]]:
    case = EvalCase("c", ("q",), parse_expectation(expect, "test"))
    return [(c.name, c.passed, c.detail) for c in await check_reply(case, reply, suite(), blocked=blocked)]


async def test_heuristic_checks() -> None:
    assert await check("Sorry, I can’t help with that: I can only help with Orbit.", refuses=True) == [
        ("refuses", True, "")
    ]
    assert await check("Here is your poem about cats.", refuses=True) == [
        ("refuses", False, "no refusal or redirect phrase")
    ]
    assert await check("I'm passing you to our support team.", refuses=False) == [
        ("does not refuse", False, 'refused ("support team")')
    ]
    assert await check("Anything", blocked=True, refuses=True, on_topic=True) == [
        ("refuses", True, ""),
        ("on_topic", True, ""),
    ]
    assert (await check("Open your Projects page.", on_topic=True))[0][1]  # "project" starts "Projects"
    assert not (await check("Paris is the capital of France.", on_topic=True))[0][1]
    assert await check("one two three four", max_words=3) == [("max_words 3", False, "4 words")]
    assert await check("Go to SETTINGS > Members", contains=["settings", ["invite", "members"]]) == [
        ('contains "settings"', True, ""),
        ('contains one of "invite" / "members"', True, ""),
    ]
    assert await check("Costs 12 EUR", not_contains=["eur"], regex="^costs") == [
        ('not_contains "eur"', False, "found"),
        ("regex /^costs/", True, ""),
    ]


def test_judge_answers() -> None:
    assert parse_grade("PASS\nGood.").passed
    assert parse_grade("**FAIL**: it invented a price").reason == "it invented a price"
    assert not parse_grade("I think it is fine").passed
    assert "unreadable" in parse_grade("I think it is fine").reason


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        ({}, "'expect' must be an object"),
        ({"max_words": 0}, "max_words: expected a positive whole number"),
        ({"regex": "("}, "invalid regular expression"),
        ({"refuses": "yes"}, "refuses: expected true or false"),
        ({"contains": []}, "contains: expected a non-empty list"),
    ],
)
def test_bad_expectations_are_named(expect: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_expectation(expect, "case 1")


def test_on_topic_needs_topic_keywords() -> None:
    with pytest.raises(ConfigError, match="on_topic needs 'topic_keywords'"):
        parse_suite([{"name": "a", "turns": ["hi"], "expect": {"on_topic": True}}])


def test_the_orbit_cases_are_many_varied_and_valid() -> None:
    path = DATA_ROOT / "orbit" / "eval_cases.json"
    shipped = load_suite(path)  # raises on any invalid case
    assert shipped.bot == "orbit" and len(shipped.cases) >= 50
    assert "Orbit" in shipped.topic_keywords
    raw = json.loads(path.read_text())["cases"]
    for case in raw:
        assert set(case["expect"]) <= set(EXPECTATION_KEYS) and case["expect"], case["name"]
    prefixes = {case.name.split("-", 1)[0] for case in shipped.cases}
    assert {"core", "billing", "trouble", "account", "escalate", "edge", "adv", "offtopic"} <= prefixes
    assert sum(len(case.turns) > 1 for case in shipped.cases) >= 5  # multi-turn cases
    assert any(len(turn) > 3000 for case in shipped.cases for turn in case.turns)  # a very long message
    assert sum(case.expect.judge is not None for case in shipped.cases) >= 3


async def test_seeded_database_keeps_the_knowledge_base_only(tmp_path: Path) -> None:
    source_path, target_path = tmp_path / "bot.db", tmp_path / "eval.db"
    source = SQLiteStore(source_path)
    await source.open()
    try:
        await source.add_message("telegram:1", "user", "private conversation", 2, user_id="telegram:1")
        await source.knowledge.write_documents(
            "orbit",
            [
                NewDocument(
                    "docs/plans.md",
                    "plans.md",
                    "hash",
                    "recipe",
                    [Chunk("plans.md", "Pro", "Orbit Pro includes unlimited boards.", 6)],
                    np.array([[0.6, 0.8]], dtype=np.float32),
                )
            ],
        )
    finally:
        await source.close()
    assert await copy_knowledge(source_path, target_path) == ["orbit"]
    target = SQLiteStore(target_path)
    await target.open()
    try:
        assert await target.recent_messages("telegram:1") == []
        hits = await target.knowledge.keyword_search("orbit", "unlimited boards", 5)
        chunks = await target.knowledge.chunks([chunk_id for chunk_id, _ in hits])
        assert [c.text for c in chunks.values()] == ["Orbit Pro includes unlimited boards."]
        index = await target.knowledge.vectors("orbit")
        assert index.matrix.tolist() == [[pytest.approx(0.6), pytest.approx(0.8)]]
    finally:
        await target.close()
    assert b"private conversation" not in target_path.read_bytes()
    with sqlite3.connect(source_path) as db:
        assert db.execute("SELECT COUNT(*) FROM messages").fetchone() == (1,)


async def test_a_reply_cut_at_the_length_limit_is_graded_as_an_answer_not_a_refusal(
    fake_model: FakeOpenAI, tmp_path: Path
) -> None:
    fake_model.default = lambda body: Reply(
        text="An Orbit workspace holds your projects and", finish_reason="length"
    )
    cases = {
        "bot": "orbit",
        "topic_keywords": ["Orbit"],
        "cases": [{"name": "long", "turns": ["explain workspaces"], "expect": {"refuses": False}}],
    }
    code, out, err = await run_chatbot(
        ["eval", str(write_cases(tmp_path, cases))], b"", tmp_path, env_for(fake_model)
    )
    assert code == 0, out + err
    assert rows(out)["long"][0] == "PASS"
