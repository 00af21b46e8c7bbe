"""The platform-neutral core of the chat bot: memory, token counting, trimming, model calls and streaming.

Nothing here imports a platform SDK or anything in ``adapters``; adapters depend on this package,
never the other way round.
"""
