"""The guardrails on tool output: a tool result is untrusted input (a web page, a ticket, a file can carry
a prompt injection), so it is read for the same attack patterns as a user's message. A result that carries
one is withheld from the model (:mod:`core.tool_loop` tells the model and the user so) rather than
rewritten: a neutralised copy would still be the attacker's text in the model's context."""

from __future__ import annotations

from core.incoming import IncomingMessage
from features.guardrails.rules import find_attack


class ToolResultGuard:
    """Withholds tool output that reads as an injection, extraction or jailbreak attempt."""

    async def check_tool_result(self, message: IncomingMessage, tool: str, text: str) -> str | None:
        attack = find_attack(text)
        return None if attack is None else f"{attack} attempt in the output of {tool}"
