"""Usage limits: messages a minute per user, daily token budgets per user and per bot, and prices."""
