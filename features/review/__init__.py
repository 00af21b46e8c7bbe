"""Review: turns flagged for a human (user said "that is wrong", a guard blocked), listed by ``chatbot review``."""
