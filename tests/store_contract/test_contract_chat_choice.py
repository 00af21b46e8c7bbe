"""Contract: a conversation's ``/mode`` and ``/model`` choice (``ConversationStore.chat_choice``, bots file,
issue 16)."""

from __future__ import annotations

from core.store import ChatChoice, Storage


async def test_a_session_without_a_choice_has_the_bots_own(store: Storage) -> None:
    assert await store.chat_choice("telegram:1") == ChatChoice()


async def test_a_choice_is_kept_per_session_and_replaced_whole(store: Storage) -> None:
    await store.set_chat_choice("orbit/telegram:1", ChatChoice(mode="pirate", model="big"))
    await store.set_chat_choice("orbit/telegram:2", ChatChoice(model="small"))
    assert await store.chat_choice("orbit/telegram:1") == ChatChoice("pirate", "big")
    assert await store.chat_choice("orbit/telegram:2") == ChatChoice(None, "small")
    await store.set_chat_choice("orbit/telegram:1", ChatChoice(mode=None, model="big"))
    assert await store.chat_choice("orbit/telegram:1") == ChatChoice(None, "big")


async def test_a_choice_outlives_a_reset_of_the_conversation(store: Storage) -> None:
    await store.add_message("telegram:1", "user", "hi", 1)
    await store.set_chat_choice("telegram:1", ChatChoice(mode="pirate"))
    await store.reset("telegram:1")
    assert await store.chat_choice("telegram:1") == ChatChoice(mode="pirate")


async def test_forgetting_a_user_forgets_the_choice_of_their_own_conversations(store: Storage) -> None:
    await store.add_message("telegram:1", "user", "hi", 1, user_id="telegram:1")
    await store.add_message("telegram:-100", "user", "hi all", 1, user_id="telegram:1")
    await store.add_message("telegram:-100", "user", "hello", 1, user_id="telegram:2")
    await store.set_chat_choice("telegram:1", ChatChoice(mode="pirate"))
    await store.set_chat_choice("telegram:-100", ChatChoice(mode="pirate"))
    await store.forget_user("telegram:1")
    assert await store.chat_choice("telegram:1") == ChatChoice()
    assert await store.chat_choice("telegram:-100") == ChatChoice(mode="pirate")  # a group's is the group's
