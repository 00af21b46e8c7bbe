from pathlib import Path

from tests.fakes.openai_server import FakeOpenAI
from tests.support.engines import engine_for, said


async def test_reply_streams_from_fake_model(fake_model: FakeOpenAI, db_path: Path) -> None:
    async with engine_for(fake_model.base_url, db_path) as engine:
        text = await engine.reply_text(said("console:a", "hello there"))
    assert text == "You said: hello there"
    assert fake_model.last_messages()[0]["role"] == "system"
