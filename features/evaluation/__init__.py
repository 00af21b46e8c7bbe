"""Evaluation: a bot's cases run against the configured model (``chatbot eval``)."""
