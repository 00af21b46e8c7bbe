"""Thin platform adapters: each maps platform events onto :class:`core.incoming.IncomingMessage` and offers
send / edit / typing with the platform's declared limits. Everything else lives in ``core``."""
