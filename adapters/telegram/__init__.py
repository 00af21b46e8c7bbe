"""The Telegram adapter: private chats, groups and forum topics, streamed by editing messages in place."""

from adapters.telegram.runner import TelegramRunner, TelegramTuning, create_runner

__all__ = ["TelegramRunner", "TelegramTuning", "create_runner"]
