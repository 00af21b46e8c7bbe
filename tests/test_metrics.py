"""Observability: the Prometheus endpoint after real turns, and JSON log lines from ``chatbot chat``."""

from __future__ import annotations

import json
import socket
import sqlite3
from pathlib import Path

import aiohttp
import pytest

from core.errors import ConfigError
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.support.cli import run_chatbot
from tests.support.engines import engine_for, said


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def scrape(port: int) -> dict[str, float]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


async def test_metrics_count_turns_tokens_and_latency(fake_model: FakeOpenAI, db_path: Path) -> None:
    port = free_port()
    fake_model.queue("Hello there, how can I help?", Reply(status=500))
    async with engine_for(fake_model.base_url, db_path, CHATBOT_METRICS_PORT=port) as engine:
        await engine.reply_text(said("m:1", "hi"))
        await engine.reply_text(said("m:1", "and again"))
        await engine.reply_text(said("m:1", "/help"))
        samples = await scrape(port)
    with sqlite3.connect(db_path) as db:
        prompt, completion = db.execute(
            "SELECT SUM(prompt_tokens), SUM(completion_tokens) FROM turns"
        ).fetchone()

    def sample(name: str, **labels: str) -> float:
        labels = {"bot": "default", "platform": "test", **labels}
        return samples[name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"]

    assert sample("chatbot_turns_total", status="ok") == 1
    assert sample("chatbot_turns_total", status="error") == 1
    assert sample("chatbot_turns_total", status="command") == 1
    assert sample("chatbot_tokens_total", kind="prompt") == prompt > 0
    assert sample("chatbot_tokens_total", kind="completion") == completion > 0
    assert sample("chatbot_turn_latency_seconds_count") == 2  # the two turns that called the model
    assert sample("chatbot_turn_latency_seconds_bucket", le="+Inf") == 2
    expected_cost = (prompt * 0.15 + completion * 0.60) / 1e6  # gpt-4o-mini's built-in price
    assert sample("chatbot_cost_usd_total") == pytest.approx(expected_cost)
    with socket.socket() as sock:  # closing the engine stopped the server
        sock.bind(("127.0.0.1", port))


async def test_each_engine_has_its_own_registry(fake_model: FakeOpenAI, tmp_path: Path) -> None:
    first, second = free_port(), free_port()
    async with (
        engine_for(fake_model.base_url, tmp_path / "a.db", CHATBOT_METRICS_PORT=first) as one,
        engine_for(fake_model.base_url, tmp_path / "b.db", bot="orbit", CHATBOT_METRICS_PORT=second) as two,
    ):
        await one.reply_text(said("a", "hi"))
        await two.reply_text(said("b", "hi"))
        await two.reply_text(said("b", "hi again"))
        assert samples_for(await scrape(first)) == {"default": 1}
        assert samples_for(await scrape(second)) == {"orbit": 2}


def samples_for(samples: dict[str, float]) -> dict[str, float]:
    return {
        name.split('bot="', 1)[1].split('"', 1)[0]: value
        for name, value in samples.items()
        if name.startswith("chatbot_turns_total{")
    }


async def test_no_port_no_server_and_a_busy_port_is_a_clear_error(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    async with engine_for(fake_model.base_url, db_path) as engine:
        assert not any(type(o).__name__ == "TurnMetrics" for o in engine.hooks.observers)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(
            ConfigError, match=f"CHATBOT_METRICS_PORT: cannot serve metrics on 127.0.0.1:{port}"
        ):
            async with engine_for(fake_model.base_url, db_path, CHATBOT_METRICS_PORT=port):
                pass


async def test_json_logs_from_chatbot_chat(fake_model: FakeOpenAI, tmp_path: Path) -> None:
    fake_model.queue("Hi! Ask me anything.")
    env = {
        "OPENAI_BASE_URL": fake_model.base_url,
        "OPENAI_API_KEY": "sk-json-log-secret",
        "CHATBOT_MODEL": "gpt-4",
        "CHATBOT_JSON_LOGS": "true",
    }
    code, out, err = await run_chatbot(["chat", "--session", "js"], b"hello there\n", tmp_path, env)
    assert code == 0, err
    assert out == "Hi! Ask me anything.\n"
    text = (tmp_path / "data" / "chatbot.log").read_text()
    entries = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
    assert all({"time", "level", "logger"} <= entry.keys() for entry in entries)
    turns = [entry["turn"] for entry in entries if entry["logger"] == "chatbot.turns"]
    assert len(turns) == 1
    assert turns[0]["session"] == "console:js" and turns[0]["user"] == "console:local"
    assert (turns[0]["user_text"], turns[0]["reply_text"], turns[0]["status"]) == (
        "hello there",
        "Hi! Ask me anything.",
        "ok",
    )
    assert turns[0]["prompt_tokens"] > 0 and turns[0]["completion_tokens"] > 0 and turns[0]["latency_ms"] >= 0
    assert "sk-json-log-secret" not in text
