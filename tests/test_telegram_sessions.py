"""Telegram updates -> sessions and "should the bot answer", on literal Bot API payloads."""

from __future__ import annotations

from typing import Any

from adapters.telegram.formatting import markdown_to_html, render_final, visible_text, well_formed
from adapters.telegram.sessions import BotIdentity, route, session_id, strip_mentions
from core.splitting import utf16_len

ME = BotIdentity(id=777, username="helper_bot")
ALICE = {"id": 1001, "is_bot": False, "first_name": "Alice"}
BOB = {"id": 1002, "is_bot": False, "first_name": "Bob"}
PRIVATE = {"id": 1001, "type": "private", "first_name": "Alice"}
GROUP = {"id": -100200, "type": "supergroup", "title": "Team"}
FORUM = {"id": -100300, "type": "supergroup", "title": "Forum", "is_forum": True}


def update(message: dict[str, Any]) -> dict[str, Any]:
    return {"update_id": 10, "message": {"message_id": 5, "date": 1700000000, "from": ALICE, **message}}


def mention(text: str, name: str = "@helper_bot") -> dict[str, Any]:
    start = text.index(name)
    return {"type": "mention", "offset": utf16_len(text[:start]), "length": utf16_len(name)}


def test_private_chat_session_is_the_chat() -> None:
    payload = update({"chat": PRIVATE, "text": "hello"})
    assert session_id(payload) == "telegram:1001"
    assert session_id(payload, per_user=True) == "telegram:1001"
    found = route(payload, ME)
    assert found is not None
    assert (found.session_id, found.text, found.thread_id, found.reply_to) == (
        "telegram:1001",
        "hello",
        None,
        None,
    )


def test_group_session_is_per_chat_and_optionally_per_user() -> None:
    a = update({"chat": GROUP, "text": "hi"})
    b = update({"chat": GROUP, "text": "hi", "from": BOB})
    assert session_id(a) == session_id(b) == "telegram:-100200"
    assert session_id(a, per_user=True) == "telegram:-100200:u1001"
    assert session_id(b, per_user=True) == "telegram:-100200:u1002"


def test_forum_topics_get_their_own_sessions() -> None:
    created = {"message_id": 42, "date": 1, "chat": FORUM, "from": BOB, "forum_topic_created": {"name": "t"}}
    in_topic = update(
        {
            "chat": FORUM,
            "text": "hi",
            "message_thread_id": 42,
            "is_topic_message": True,
            "reply_to_message": created,
        }
    )
    general = update({"chat": FORUM, "text": "hi"})
    assert session_id(in_topic) == "telegram:-100300:42"
    assert session_id(in_topic, per_user=True) == "telegram:-100300:42:u1001"
    assert session_id(general) == "telegram:-100300"


def test_reply_thread_in_an_ordinary_group_is_not_a_topic() -> None:
    payload = update({"chat": GROUP, "text": "hi", "message_thread_id": 3})
    assert session_id(payload) == "telegram:-100200"


def test_updates_without_a_new_message_have_no_session() -> None:
    assert session_id({"update_id": 1, "edited_message": {"chat": PRIVATE, "text": "x"}}) is None
    assert route({"update_id": 1, "callback_query": {"id": "1"}}, ME) is None
    assert route({"update_id": 1, "channel_post": {"chat": {"id": -5, "type": "channel"}}}, ME) is None


def test_group_message_without_mention_is_ignored() -> None:
    assert route(update({"chat": GROUP, "text": "what is the weather"}), ME) is None
    other = "hey @other_bot what's up"
    assert (
        route(update({"chat": GROUP, "text": other, "entities": [mention(other, "@other_bot")]}), ME) is None
    )


def test_group_mention_is_answered_and_stripped() -> None:
    text = "@helper_bot, what is 2+2?"
    found = route(update({"chat": GROUP, "text": text, "entities": [mention(text)]}), ME)
    assert found is not None
    assert found.text == "what is 2+2?"
    assert found.reply_to == 5
    middle = "so @Helper_Bot what now"
    found = route(update({"chat": GROUP, "text": middle, "entities": [mention(middle, "@Helper_Bot")]}), ME)
    assert found is not None and found.text == "so what now"


def test_mention_offsets_are_utf16() -> None:
    text = "😀😀 @helper_bot tell me a joke"
    entity = mention(text)
    assert entity["offset"] == 5  # two astral emoji are four UTF-16 units, then a space
    found = route(update({"chat": GROUP, "text": text, "entities": [entity]}), ME)
    assert found is not None and found.text == "😀😀 tell me a joke"
    assert strip_mentions("ask @helper_bot?", [mention("ask @helper_bot?")], ME) == "ask?"


def test_reply_to_the_bot_is_answered_but_topic_creation_is_no_reply() -> None:
    bots_message = {
        "message_id": 4,
        "date": 1,
        "chat": GROUP,
        "from": {"id": 777, "is_bot": True},
        "text": "x",
    }
    found = route(update({"chat": GROUP, "text": "and then?", "reply_to_message": bots_message}), ME)
    assert found is not None and found.text == "and then?"
    created = {
        "message_id": 42,
        "date": 1,
        "chat": FORUM,
        "from": {"id": 777, "is_bot": True},
        "forum_topic_created": {"name": "the bot's topic"},
    }
    topic_message = {
        "chat": FORUM,
        "text": "chatting among ourselves",
        "message_thread_id": 42,
        "is_topic_message": True,
        "reply_to_message": created,
    }
    assert route(update(topic_message), ME) is None


def test_commands_in_groups() -> None:
    def command(text: str) -> dict[str, Any]:
        length = utf16_len(text.split()[0])
        return update(
            {
                "chat": GROUP,
                "text": text,
                "entities": [{"type": "bot_command", "offset": 0, "length": length}],
            }
        )

    ours = frozenset({"start", "help", "reset"})
    assert route(command("/reset"), ME, commands=ours) is not None
    assert route(command("/reset"), ME) is None  # not in the commands the runner says are ours
    assert route(command("/help@helper_bot"), ME) is not None
    assert route(command("/weather@helper_bot Paris"), ME) is not None
    assert route(command("/help@other_bot"), ME) is None
    assert route(command("/weather Paris"), ME, commands=ours) is None  # someone else's command


def test_forum_topic_route_answers_in_the_topic() -> None:
    text = "@helper_bot hi"
    payload = update(
        {
            "chat": FORUM,
            "text": text,
            "entities": [mention(text)],
            "message_thread_id": 9,
            "is_topic_message": True,
        }
    )
    found = route(payload, ME)
    assert found is not None
    assert (found.session_id, found.thread_id, found.text) == ("telegram:-100300:9", 9, "hi")


def test_files_route_with_their_caption_as_text_and_service_messages_not_at_all() -> None:
    photo = update(
        {"chat": PRIVATE, "photo": [{"file_id": "a", "file_unique_id": "b", "width": 1, "height": 1}]}
    )
    found = route(photo, ME)
    assert found is not None and found.text == ""
    assert [(f.file_id, f.kind) for f in found.files] == [("a", "image")]
    sticker_in_group = update({"chat": GROUP, "sticker": {"file_id": "s"}})
    assert route(sticker_in_group, ME) is None  # not addressed
    caption = "@helper_bot what is this?"
    addressed_photo = update(
        {
            "chat": GROUP,
            "photo": [{"file_id": "a"}],
            "caption": caption,
            "caption_entities": [mention(caption)],
        }
    )
    found = route(addressed_photo, ME)
    assert found is not None and found.text == "what is this?" and len(found.files) == 1
    joined = update({"chat": GROUP, "new_chat_members": [BOB]})
    assert route(joined, ME) is None


def test_messages_from_bots_are_ignored() -> None:
    assert route(update({"chat": PRIVATE, "text": "hi", "from": {"id": 5, "is_bot": True}}), ME) is None


def test_final_markdown_becomes_telegram_html() -> None:
    text = "# Plan\nUse **bold**, *italics*, `x < y` and [docs](https://example.com/a_b).\n```python\nprint('<hi>')\n```"
    markup = render_final(text, 4096, utf16_len)
    assert markup is not None and well_formed(markup)
    assert "<b>Plan</b>" in markup and "<b>bold</b>" in markup and "<i>italics</i>" in markup
    assert "<code>x &lt; y</code>" in markup
    assert '<a href="https://example.com/a_b">docs</a>' in markup
    assert "<pre><code class=\"language-python\">print('&lt;hi&gt;')</code></pre>" in markup
    assert visible_text(markup).startswith("Plan\nUse bold, italics, x < y and docs.")


def test_render_final_falls_back_to_plain_text() -> None:
    assert render_final("no formatting here, snake_case_name 2*3*4", 4096, utf16_len) is None
    assert not well_formed(markdown_to_html("*a **b* c**"))
    assert render_final("*a **b* c**", 4096, utf16_len) is None
    long_bold = "**" + "x" * 5000 + "**"
    assert render_final(long_bold, 4096, utf16_len) is None
    assert render_final("**" + "x" * 4090 + "**", 4096, utf16_len) is not None  # counted after parsing


def test_our_own_name_is_taken_off_a_command_and_another_bots_is_kept() -> None:
    def text_of(text: str, chat: dict[str, Any]) -> str | None:
        length = utf16_len(text.split()[0])
        entities = [{"type": "bot_command", "offset": 0, "length": length}]
        found = route(update({"chat": chat, "text": text, "entities": entities}), ME)
        return found.text if found is not None else None

    private = PRIVATE
    assert text_of("/reset@helper_bot now", private) == "/reset now"
    assert text_of("/RESET@Helper_Bot", GROUP) == "/RESET"
    assert text_of("/reset@other_bot", private) == "/reset@other_bot"  # the engine takes it for text
    assert text_of("/reset@helper_botty", private) == "/reset@helper_botty"
    assert text_of("/forget", GROUP) is None  # not ours unless the runner says /forget is registered
    forget = update(
        {"chat": GROUP, "text": "/forget", "entities": [{"type": "bot_command", "offset": 0, "length": 7}]}
    )
    found = route(forget, ME, commands=frozenset({"reset", "forget"}))
    assert found is not None and found.text == "/forget"
