"""Tool calling end to end: the real engine, the fake model scripting tool calls, and a real MCP server
(tests/fakes/mcp_server.py, written with the SDK) over stdio. What is asserted is what the user reads,
what the model was sent and what is stored."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from core.conversation import ConversationEngine
from core.hooks import Progress
from core.tool_loop import AWAITING, DECLINED
from tests.fakes.openai_server import FakeOpenAI, Reply, tool_call
from tests.support.engines import engine_for, said
from tests.support.tools import stored_replies, tool_messages_are_paired, write_tools_file

SESSION = "test:tools"


def requests_with_tools(fake: FakeOpenAI) -> list[dict[str, Any]]:
    return [r for r in fake.chat_requests if r.get("tools")]


def tool_results(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


async def chunks_of(engine: ConversationEngine, text: str) -> list[str]:
    return [chunk async for chunk in engine.reply(said(SESSION, text))]


async def test_one_call_runs_and_the_model_answers_with_its_result(
    fake_model: FakeOpenAI, db_path: Path, tmp_path: Path
) -> None:
    fake_model.queue(
        Reply(text="Let me check.", tool_calls=[tool_call("get_weather", {"city": "Paris"}, "call_1")]),
        Reply(text="It is sunny in Paris."),
        Reply(text="You asked about Paris."),
    )
    tools = write_tools_file(tmp_path)
    async with engine_for(fake_model.base_url, db_path, CHATBOT_TOOLS_FILE=str(tools)) as engine:
        chunks = await chunks_of(engine, "weather in Paris?")
        second = await engine.reply_text(said(SESSION, "what did I ask?"))
    shown = "".join(c for c in chunks if not isinstance(c, Progress))
    assert shown == "Let me check.\n\nIt is sunny in Paris."
    assert [c for c in chunks if isinstance(c, Progress)] == ["🔧 Using the weather…", ""]
    assert second == "You asked about Paris."
    first = fake_model.chat_requests[0]
    offered = sorted(t["function"]["name"] for t in first["tools"])
    assert "not_allowed" not in offered and "get_weather" in offered
    answer_request = fake_model.chat_requests[1]["messages"]
    assert answer_request[-2]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city": "Paris"}',
    }
    assert answer_request[-2]["content"] == "Let me check."
    assert answer_request[-1] == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": "Sunny and 21 °C in Paris.",
    }
    # the next turn's prompt replays the call and its result from the store, then the final text
    later = fake_model.chat_requests[2]["messages"]
    roles = [m["role"] for m in later[1:]]
    assert roles == ["user", "assistant", "tool", "assistant", "user"]
    assert later[4] == {"role": "assistant", "content": "It is sunny in Paris."}
    assert tool_messages_are_paired(later)
    content, complete, stored = stored_replies(db_path)[0]
    assert complete and content == shown
    steps = json.loads(stored)["steps"]
    assert steps[0]["calls"][0]["name"] == "get_weather"
    assert steps[0]["results"] == {"call_1": "Sunny and 21 °C in Paris."}


async def test_several_calls_in_one_step_all_run_and_all_results_go_back(
    fake_model: FakeOpenAI, db_path: Path, tmp_path: Path
) -> None:
    fake_model.queue(
        Reply(
            tool_calls=[
                tool_call("get_weather", {"city": "Oslo"}, "a"),
                tool_call("get_time", {"zone": "Europe/Oslo"}, "b"),
            ]
        ),
        Reply(text="Sunny, and it is noon."),
    )
    tools = write_tools_file(tmp_path)
    async with engine_for(fake_model.base_url, db_path, CHATBOT_TOOLS_FILE=str(tools)) as engine:
        reply = await engine.reply_text(said(SESSION, "weather and time in Oslo?"))
    assert reply == "Sunny, and it is noon."
    sent = fake_model.chat_requests[1]["messages"]
    assert [c["id"] for c in sent[-3]["tool_calls"]] == ["a", "b"]
    assert sent[-2] == {"role": "tool", "tool_call_id": "a", "content": "Sunny and 21 °C in Oslo."}
    assert sent[-1] == {"role": "tool", "tool_call_id": "b", "content": "It is 12:00 in Europe/Oslo."}


async def test_malformed_calls_reach_the_model_as_errors_and_the_turn_still_answers(
    fake_model: FakeOpenAI, db_path: Path, tmp_path: Path
) -> None:
    fake_model.queue(
        Reply(
            tool_calls=[
                tool_call("get_weather", '{"city": "Par', "bad"),
                tool_call("launch_rockets", {}, "unknown"),
                tool_call("not_allowed", {}, "blocked"),
            ]
        ),
        Reply(text="Sorry, I could not look that up."),
    )
    tools = write_tools_file(tmp_path)
    async with engine_for(fake_model.base_url, db_path, CHATBOT_TOOLS_FILE=str(tools)) as engine:
        reply = await engine.reply_text(said(SESSION, "weather?"))
    assert reply == "Sorry, I could not look that up."
    bad, unknown, blocked = tool_results(fake_model.chat_requests[1])
    assert bad.startswith("Error: the arguments are not valid JSON")
    assert unknown.startswith("Error: there is no tool named 'launch_rockets'")
    assert blocked.startswith("Error: there is no tool named 'not_allowed'"), "outside the allowlist"


async def test_a_model_that_never_stops_calling_tools_is_stopped_at_the_step_limit(
    fake_model: FakeOpenAI, db_path: Path, tmp_path: Path
) -> None:
    fake_model.default = lambda body: Reply(tool_calls=[tool_call("get_time", {"zone": "UTC"})])
    tools = write_tools_file(tmp_path, max_steps=3)
    async with engine_for(fake_model.base_url, db_path, CHATBOT_TOOLS_FILE=str(tools)) as engine:
        reply = await engine.reply_text(said(SESSION, "loop forever"))
        fake_model.default = None
        fake_model.queue(Reply(text="fine"))
        await engine.reply_text(said(SESSION, "and now?"))
    assert "I stopped here: this question needed more than 3 tool steps" in reply
    assert len(fake_model.chat_requests) == 4 + 1  # 3 steps run, the 4th asked for more, then the next turn
    _content, complete, stored = stored_replies(db_path)[0]
    assert complete and len(json.loads(stored)["steps"]) == 3  # the unanswered 4th call is not kept
    assert tool_messages_are_paired(fake_model.chat_requests[-1]["messages"])


async def test_a_slow_tool_is_cut_at_its_time_limit_and_the_user_reads_a_plain_sentence(
    fake_model: FakeOpenAI, db_path: Path, tmp_path: Path
) -> None:
    fake_model.queue(
        Reply(tool_calls=[tool_call("slow_lookup", {"seconds": 30}, "slow")]),
        Reply(text="The lookup is slow today."),
    )
    tools = write_tools_file(tmp_path, tool_seconds=0.5)
    async with engine_for(fake_model.base_url, db_path, CHATBOT_TOOLS_FILE=str(tools)) as engine:
        reply = await engine.reply_text(said(SESSION, "look it up"))
        after = await engine.reply_text(said(SESSION, "thanks"))
    assert reply == (
        "⚠️ slow lookup did not work (it did not answer within 0.5 seconds).\n\nThe lookup is slow today."
    )
    assert after == "You said: thanks", "the next message is answered"
    assert tool_results(fake_model.chat_requests[1]) == ["Error: it did not answer within 0.5 seconds"]


async def test_the_total_time_limit_ends_the_turn_with_a_clear_answer(
    fake_model: FakeOpenAI, db_path: Path, tmp_path: Path
) -> None:
    fake_model.default = lambda body: Reply(tool_calls=[tool_call("slow_lookup", {"seconds": 0.6})])
    tools = write_tools_file(tmp_path, total_seconds=1.0, tool_seconds=5)
    async with engine_for(fake_model.base_url, db_path, CHATBOT_TOOLS_FILE=str(tools)) as engine:
        reply = await engine.reply_text(said(SESSION, "keep looking"))
    assert reply.endswith("⚠️ I stopped here: the tools took longer than 1 seconds in all.")
    assert len(fake_model.chat_requests) <= 3


async def test_the_token_limit_ends_the_turn_with_a_clear_answer(
    fake_model: FakeOpenAI, db_path: Path, tmp_path: Path
) -> None:
    fake_model.default = lambda body: Reply(tool_calls=[tool_call("get_time", {})])
    tools = write_tools_file(tmp_path, max_tokens=10)
    async with engine_for(fake_model.base_url, db_path, CHATBOT_TOOLS_FILE=str(tools)) as engine:
        reply = await engine.reply_text(said(SESSION, "time?"))
    assert reply.endswith("⚠️ I stopped here: this question used up its allowance of 10 tokens.")
    assert len(fake_model.chat_requests) == 1


@pytest.mark.parametrize("server", ["llama-server", "ollama"])
async def test_a_server_that_rejects_tools_is_detected_once_and_the_bot_answers_without(
    fake_model: FakeOpenAI, db_path: Path, tmp_path: Path, server: str, caplog: pytest.LogCaptureFixture
) -> None:
    fake_model.reject_tools = server
    fake_model.queue(Reply(text="Hello without tools."), Reply(text="Still fine."))
    tools = write_tools_file(tmp_path)
    caplog.set_level(logging.WARNING)
    async with engine_for(fake_model.base_url, db_path, CHATBOT_TOOLS_FILE=str(tools)) as engine:
        first = await engine.reply_text(said(SESSION, "hi"))
        second = await engine.reply_text(said(SESSION, "again"))
    assert (first, second) == ("Hello without tools.", "Still fine.")
    assert [bool(r.get("tools")) for r in fake_model.chat_requests] == [True, False, False]
    warnings = [r for r in caplog.records if "refuses tools" in r.getMessage()]
    assert len(warnings) == 1


async def test_an_injection_inside_a_tool_result_never_reaches_the_model(
    fake_model: FakeOpenAI, db_path: Path, tmp_path: Path
) -> None:
    fake_model.queue(
        Reply(tool_calls=[tool_call("fetch_page", {"url": "http://evil.example"}, "page")]),
        Reply(text="That page had nothing useful."),
    )
    tools = write_tools_file(tmp_path)
    async with engine_for(fake_model.base_url, db_path, CHATBOT_TOOLS_FILE=str(tools)) as engine:
        reply = await engine.reply_text(said(SESSION, "what does the page say?"))
    (result,) = tool_results(fake_model.chat_requests[1])
    assert "Ignore all previous instructions" not in result
    assert result.startswith("[The tool's output was withheld")
    assert "I ignored what fetch page returned" in reply
    assert "Ignore all previous instructions" not in stored_replies(db_path)[0][2]


async def test_a_huge_result_is_cut_with_a_marker_to_fit_the_budget(
    fake_model: FakeOpenAI, db_path: Path, tmp_path: Path
) -> None:
    fake_model.queue(Reply(tool_calls=[tool_call("big_report", {}, "big")]), Reply(text="Summary."))
    tools = write_tools_file(tmp_path, result_tokens=300)
    async with engine_for(fake_model.base_url, db_path, CHATBOT_TOOLS_FILE=str(tools)) as engine:
        await engine.reply_text(said(SESSION, "report"))
    (result,) = tool_results(fake_model.chat_requests[1])
    assert len(result) < 3_000 < 140_000
    assert "more characters did not fit" in result


async def test_a_tool_error_reaches_the_model_as_text_and_the_user_as_a_sentence(
    fake_model: FakeOpenAI, db_path: Path, tmp_path: Path
) -> None:
    fake_model.queue(Reply(tool_calls=[tool_call("broken_lookup", {}, "x")]), Reply(text="It failed."))
    tools = write_tools_file(tmp_path)
    async with engine_for(fake_model.base_url, db_path, CHATBOT_TOOLS_FILE=str(tools)) as engine:
        reply = await engine.reply_text(said(SESSION, "look up"))
    assert reply.startswith("⚠️ broken lookup did not work (it reported an error).")
    assert reply.endswith("It failed.")
    assert "Traceback" not in reply and "10.0.0.5" not in reply
    (result,) = tool_results(fake_model.chat_requests[1])
    assert result.startswith("Error: ") and "Traceback" not in result


async def test_an_acting_tool_runs_only_after_the_user_says_yes(
    fake_model: FakeOpenAI, db_path: Path, tmp_path: Path
) -> None:
    fake_model.queue(
        Reply(
            text="I can open one.", tool_calls=[tool_call("create_ticket", {"title": "Printer on fire"}, "t")]
        ),
        Reply(text="Done: ticket #1 is open."),
    )
    tools = write_tools_file(tmp_path)
    actions = tmp_path / "fake-actions.log"
    async with engine_for(fake_model.base_url, db_path, CHATBOT_TOOLS_FILE=str(tools)) as engine:
        asked = await engine.reply_text(said(SESSION, "open a ticket: printer on fire"))
        assert not actions.exists(), "an acting tool must not run before the user confirms"
        done = await engine.reply_text(said(SESSION, "Yes!"))
    assert asked.startswith("I can open one.\n\n🔧 I'd like to use create ticket")
    assert 'reply "yes" to run it or "no" to cancel' in asked
    assert actions.read_text() == "Printer on fire\n"
    assert done == "Done: ticket #1 is open."
    sent = fake_model.chat_requests[1]["messages"]
    assert sent[-1]["role"] == "tool" and sent[-1]["content"] == "Ticket #1 created: Printer on fire"
    assert sent[-3] == {"role": "user", "content": "Yes!"}
    assert tool_messages_are_paired(sent)
    assert AWAITING in [m.get("content") for m in sent]  # the first turn's call, answered "waiting"


async def test_an_acting_tool_does_not_run_when_the_user_says_no(
    fake_model: FakeOpenAI, db_path: Path, tmp_path: Path
) -> None:
    fake_model.queue(
        Reply(tool_calls=[tool_call("create_ticket", {"title": "x"}, "t")]), Reply(text="Okay, I won't.")
    )
    tools = write_tools_file(tmp_path)
    async with engine_for(fake_model.base_url, db_path, CHATBOT_TOOLS_FILE=str(tools)) as engine:
        await engine.reply_text(said(SESSION, "open a ticket"))
        answer = await engine.reply_text(said(SESSION, "no"))
    assert answer == "Okay, I won't."
    assert not (tmp_path / "fake-actions.log").exists()
    assert tool_results(fake_model.chat_requests[1])[-1] == DECLINED


async def test_a_confirmation_that_waited_too_long_does_not_run_the_tool(
    fake_model: FakeOpenAI, db_path: Path, tmp_path: Path
) -> None:
    fake_model.queue(Reply(tool_calls=[tool_call("create_ticket", {"title": "x"}, "t")]), Reply(text="Sure."))
    tools = write_tools_file(tmp_path, confirm_seconds=0.3)
    async with engine_for(fake_model.base_url, db_path, CHATBOT_TOOLS_FILE=str(tools)) as engine:
        asked = await engine.reply_text(said(SESSION, "open a ticket"))
        await asyncio.sleep(0.5)
        late = await engine.reply_text(said(SESSION, "yes"))
    assert "I'll wait 0.3 seconds" in asked
    assert late.startswith("⌛ I did not run create ticket: the confirmation waited too long.")
    assert not (tmp_path / "fake-actions.log").exists()


async def test_another_message_instead_of_yes_leaves_the_tool_not_run_and_says_so(
    fake_model: FakeOpenAI, db_path: Path, tmp_path: Path
) -> None:
    fake_model.queue(
        Reply(tool_calls=[tool_call("create_ticket", {"title": "x"}, "t")]), Reply(text="Paris.")
    )
    tools = write_tools_file(tmp_path)
    async with engine_for(fake_model.base_url, db_path, CHATBOT_TOOLS_FILE=str(tools)) as engine:
        await engine.reply_text(said(SESSION, "open a ticket"))
        other = await engine.reply_text(said(SESSION, "actually, what is the capital of France?"))
    assert other == "ℹ️ I did not run create ticket: you did not confirm it.\n\nParis."
    assert not (tmp_path / "fake-actions.log").exists()


async def test_a_failed_turn_leaves_no_half_tool_exchange_in_later_prompts(
    fake_model: FakeOpenAI, db_path: Path, tmp_path: Path
) -> None:
    fake_model.queue(
        Reply(tool_calls=[tool_call("get_weather", {"city": "Rome"}, "w")]),
        Reply(status=400, error_message="model exploded"),
        Reply(text="Fresh answer."),
    )
    tools = write_tools_file(tmp_path)
    async with engine_for(fake_model.base_url, db_path, CHATBOT_TOOLS_FILE=str(tools)) as engine:
        failed = await engine.reply_text(said(SESSION, "weather in Rome?"))
        fresh = await engine.reply_text(said(SESSION, "hello"))
    assert failed.startswith("⚠️ The model server refused this request")
    assert fresh == "Fresh answer."
    later = fake_model.chat_requests[-1]["messages"]
    assert [m["role"] for m in later] == ["system", "user"]
    assert all(not tools_ for _content, complete, tools_ in stored_replies(db_path) if not complete)


async def test_trimming_drops_a_call_and_its_result_together(
    fake_model: FakeOpenAI, db_path: Path, tmp_path: Path
) -> None:
    tools = write_tools_file(tmp_path, result_tokens=300)
    async with engine_for(
        fake_model.base_url, db_path, CHATBOT_TOOLS_FILE=str(tools), CHATBOT_CONTEXT_TOKENS=2_000
    ) as engine:
        for turn in range(6):
            fake_model.queue(
                Reply(tool_calls=[tool_call("big_report", {}, f"r{turn}")]),
                Reply(text=f"Report {turn} read."),
            )
            await engine.reply_text(said(SESSION, f"report {turn}"))
    last = fake_model.chat_requests[-1]["messages"]
    assert tool_messages_are_paired(last)
    replayed = [m for m in last if m["role"] == "tool"]
    assert len(replayed) < 6, "older exchanges must have been trimmed"
    for request in fake_model.chat_requests:
        assert tool_messages_are_paired(request["messages"])


async def test_a_credential_in_a_tool_result_is_redacted_before_the_model_and_the_store(
    fake_model: FakeOpenAI, db_path: Path, tmp_path: Path
) -> None:
    fake_model.queue(Reply(tool_calls=[tool_call("read_settings", {}, "cfg")]), Reply(text="Region eu-west."))
    tools = write_tools_file(tmp_path)
    async with engine_for(fake_model.base_url, db_path, CHATBOT_TOOLS_FILE=str(tools)) as engine:
        await engine.reply_text(said(SESSION, "which region?"))
    (result,) = tool_results(fake_model.chat_requests[1])
    assert "region = eu-west" in result and "sk-proj-" not in result
    for file in db_path.parent.glob(db_path.name + "*"):  # the database and its WAL
        assert b"sk-proj-" not in file.read_bytes()


async def test_reset_drops_a_pending_confirmation(
    fake_model: FakeOpenAI, db_path: Path, tmp_path: Path
) -> None:
    fake_model.queue(
        Reply(tool_calls=[tool_call("create_ticket", {"title": "x"}, "t")]), Reply(text="Yes to what?")
    )
    tools = write_tools_file(tmp_path)
    async with engine_for(fake_model.base_url, db_path, CHATBOT_TOOLS_FILE=str(tools)) as engine:
        await engine.reply_text(said(SESSION, "open a ticket"))
        await engine.reply_text(said(SESSION, "/reset"))
        answer = await engine.reply_text(said(SESSION, "yes"))
    assert answer == "Yes to what?"
    assert not (tmp_path / "fake-actions.log").exists()


async def test_a_long_history_still_leaves_room_for_this_turns_tool_result(
    fake_model: FakeOpenAI, db_path: Path, tmp_path: Path
) -> None:
    tools = write_tools_file(tmp_path, result_tokens=400)
    async with engine_for(
        fake_model.base_url, db_path, CHATBOT_TOOLS_FILE=str(tools), CHATBOT_CONTEXT_TOKENS=4_000
    ) as engine:
        for turn in range(30):
            fake_model.queue(Reply(text=f"Answer {turn}: " + "words " * 60))
            await engine.reply_text(said(SESSION, f"question {turn}: " + "padding " * 60))
        fake_model.queue(Reply(tool_calls=[tool_call("big_report", {}, "big")]), Reply(text="Read it."))
        await engine.reply_text(said(SESSION, "the report, please"))
        counter = engine.counter
    (result,) = tool_results(fake_model.chat_requests[-1])
    assert counter.budgeted(counter.message_tokens(result)) > 300, "history must not crowd the result out"
    assert fake_model.chat_requests[-1]["messages"][1]["content"] != "question 0: " + "padding " * 60
    assert "more characters did not fit" in result


async def test_an_overflow_after_a_tool_result_gets_a_clear_answer_and_the_next_message_works(
    fake_model: FakeOpenAI, db_path: Path, tmp_path: Path
) -> None:
    fake_model.queue(
        Reply(tool_calls=[tool_call("get_weather", {"city": "Oslo"}, "o")]),
        Reply(
            status=400,
            error_code="context_length_exceeded",
            error_message="This model's maximum context length is 8192 tokens. However, your messages "
            "resulted in 9000 tokens. Please reduce the length of the messages.",
        ),
        Reply(text="Fresh answer."),
    )
    tools = write_tools_file(tmp_path)
    async with engine_for(fake_model.base_url, db_path, CHATBOT_TOOLS_FILE=str(tools)) as engine:
        failed = await engine.reply_text(said(SESSION, "weather in Oslo?"))
        fresh = await engine.reply_text(said(SESSION, "hello"))
    assert failed.startswith("⚠️")
    assert len(fake_model.chat_requests) == 3  # a step after tool results is not sent again trimmed
    assert fresh == "Fresh answer."
    later = fake_model.chat_requests[-1]["messages"]
    assert [m["role"] for m in later] == ["system", "user"]  # the failed turn is left out
    assert all(not tools_ for _content, complete, tools_ in stored_replies(db_path) if not complete)
