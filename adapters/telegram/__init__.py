"""The Telegram adapter: private chats (streamed in drafts), groups and forum topics (streamed by edits)."""

from adapters.telegram.runner import TelegramRunner, TelegramTuning, create_runner

__all__ = ["TelegramRunner", "TelegramTuning", "create_runner"]
