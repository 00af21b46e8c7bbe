"""The Discord adapter: DMs, mentions, replies and thread follow-ups, streamed by editing in place.

``import discord`` inside this package is the discord.py library (absolute imports), not this package.
"""

from adapters.discord.runner import DiscordOptions, DiscordRunner, create_runner

__all__ = ["DiscordOptions", "DiscordRunner", "create_runner"]
