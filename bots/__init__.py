"""The bots: their definitions (system prompt, model parameters, limits) and the entry point that runs them."""
