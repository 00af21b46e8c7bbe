"""Photos, audio clips and documents on Slack: the runner downloads ``url_private`` from the fake Slack with
the bot token (the fake checks it), the engine asks the fake model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from adapters.slack import SlackRunner
from features.media.reader import SUPPORTED
from tests.fakes.model_images import image_parts, image_size, text_of
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_api import BOT_TOKEN, BOT_USER, FakeSlack, mention, message
from tests.support.media_files import VOICE, image_bytes, pdf_bytes
from tests.test_slack_adapter import CHANNEL, eventually
from tests.test_slack_adapter import slack_bot as adapter_slack_bot

DM = "D0ALICE"


@asynccontextmanager
async def slack_bot(fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path) -> AsyncIterator[SlackRunner]:
    """The Slack adapter tests' bot, with Slack's default of native streams where a thread allows them."""
    async with adapter_slack_bot(fake_model, slack, db_path, SLACK_NATIVE_STREAMS=True) as (runner, _engine):
        yield runner


async def answer(
    slack: FakeSlack, runner: SlackRunner, text: str, files: list[dict[str, Any]], ts: str
) -> str:
    """A DM with files (a plain one without); the bot's final reply text."""
    before = len(slack.in_thread(DM, None))
    shared: dict[str, Any] = {"subtype": "file_share", "files": files} if files else {}
    event = message(text, channel=DM, channel_type="im", ts=ts, **shared)
    await slack.post_event(event)
    await eventually(lambda: len(slack.in_thread(DM, None)) > before and runner.dispatcher.pending == 0)
    return "\n".join(m.text for m in slack.in_thread(DM, None)[before:])


async def test_a_photo_with_a_caption_is_downloaded_with_the_bot_token_and_sent_to_the_model(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    png = slack.files.file(image_bytes(3000, 1000, "PNG", alpha=True), "error.png", "image/png")
    async with slack_bot(fake_model, slack, db_path) as runner:
        reply = await answer(slack, runner, "why does this fail?", [png], "2000.000001")
    parts = image_parts(fake_model.chat_requests[-1])
    assert len(parts) == 1 and image_size(parts[0]) == (2048, 683)  # fit 2048 wide; short side under 768
    assert reply.startswith("You said: why does this fail?")
    assert slack.files.downloads == [
        (f"/files-pri/T0TEAM-{png['id']}/download/error.png", f"Bearer {BOT_TOKEN}")
    ]


async def test_an_audio_clip_is_transcribed_and_quoted(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    fake_model.transcriptions.said[VOICE] = "book the meeting room for friday"
    clip = slack.files.file(
        VOICE, "audio_message.webm", "audio/webm", subtype="slack_audio", duration_ms=4200
    )
    async with slack_bot(fake_model, slack, db_path) as runner:
        reply = await answer(slack, runner, "", [clip], "2001.000001")
    assert reply.startswith("🎙️ “book the meeting room for friday”")
    assert text_of(fake_model.last_messages()[-1]["content"]) == "book the meeting room for friday"
    assert fake_model.transcriptions.requests[0]["filename"] == "audio_message.webm"


async def test_a_pdf_shared_with_partial_info_is_looked_up_and_its_text_reaches_the_model(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    pdf = slack.files.file(pdf_bytes("The launch is on 3 March."), "plan.pdf", "application/pdf")
    async with slack_bot(fake_model, slack, db_path) as runner:
        await slack.post_event(
            mention(f"<@{BOT_USER}> when is the launch?", ts="2002.000001", files=[slack.files.partial(pdf)])
        )
        await eventually(
            lambda: bool(slack.in_thread(CHANNEL, "2002.000001")) and runner.dispatcher.pending == 0
        )
    sent = text_of(fake_model.last_messages()[-1]["content"])
    assert "when is the launch?" in sent and "The launch is on 3 March." in sent
    assert [c.params.get("file") for c in slack.calls_of("files.info")] == [pdf["id"]]


async def test_an_unsupported_file_is_answered_naming_what_is_supported(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    video = slack.files.file(b"\x00\x00\x00\x18ftypmp42", "screen.mp4", "video/mp4")
    async with slack_bot(fake_model, slack, db_path) as runner:
        reply = await answer(slack, runner, "", [video], "2003.000001")
    assert "screen.mp4" in reply and "I can't read this kind of file" in reply
    assert SUPPORTED.split(" (")[0] in reply
    assert not fake_model.chat_requests


async def test_a_missing_files_read_scope_and_a_failed_download_get_clear_answers_and_the_next_message_works(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    photo = slack.files.file(image_bytes(40, 40), "a.jpg", "image/jpeg")
    async with slack_bot(fake_model, slack, db_path) as runner:
        slack.files.scope_missing = True
        no_scope = await answer(slack, runner, "", [photo], "2004.000001")
        slack.files.scope_missing = False
        slack.files.download_status = 500
        failed = await answer(slack, runner, "and this?", [photo], "2004.000002")
        after = await answer(slack, runner, "plain text now", [], "2004.000003")
    assert "files:read" in no_scope
    assert "Slack refused the download (HTTP 500)" in failed and "You said: and this?" in failed
    assert after == "You said: plain text now"


async def test_the_bot_token_is_never_sent_to_a_host_that_is_not_slack(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    photo = slack.files.file(image_bytes(40, 40), "a.jpg", "image/jpeg")
    elsewhere = {
        **photo,
        "url_private_download": "http://localhost:9/steal",
        "url_private": "http://localhost:9/x",
    }
    async with slack_bot(fake_model, slack, db_path) as runner:
        reply = await answer(slack, runner, "", [elsewhere], "2005.000001")
    assert "not hosted by Slack" in reply
    assert slack.files.downloads == []
