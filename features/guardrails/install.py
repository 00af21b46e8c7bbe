"""Guardrails: the rules layer on input and output, and the optional model check (features.guardrails.rules).

Per-bot wording, forbidden topics and output rules come from ``bots/data/<bot>/guardrails.json``.
"""

from __future__ import annotations

from features import FeatureContext
from features.guardrails.rules import Guardrails, GuardRules, ModelCheck
from features.guardrails.tool_results import ToolResultGuard

ORDER = 20

RULES_FILE = "guardrails.json"


def load_rules(ctx: FeatureContext) -> GuardRules:
    """The bot's rules file, or the defaults if it has none."""
    return GuardRules.from_file(ctx.data_dir / RULES_FILE)


async def install(ctx: FeatureContext) -> None:
    settings, engine = ctx.settings, ctx.engine
    if not settings.guardrails:
        return
    rules = load_rules(ctx)
    guard = Guardrails(
        rules,
        profile=lambda message: engine.turn_profile(message.session_id),  # falls back to engine.bot
        max_chars=settings.max_message_chars,
        clock=engine.clock.now,
        hooks=engine.hooks,
    )
    engine.hooks.input_guards.append(guard)
    engine.hooks.output_guards.append(guard)
    engine.hooks.tool_result_guards.append(ToolResultGuard())  # tool output is untrusted input
    if settings.guard_model_check:
        check = ModelCheck(engine.model, rules, profile=engine.turn_profile, model_name=settings.guard_model)
        engine.hooks.input_guards.append(check)
        engine.hooks.output_guards.append(check)
