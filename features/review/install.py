"""Review triggers: flag conversations for a human to read (see :mod:`features.review.flags`, ``chatbot review``)."""

from __future__ import annotations

from core.store import storage_of
from features import FeatureContext
from features.review.flags import ReviewTrigger, parse_phrases

ORDER = 50


async def install(ctx: FeatureContext) -> None:
    review = storage_of(ctx.engine.store).review
    ctx.engine.hooks.observers.append(ReviewTrigger(review, parse_phrases(ctx.settings.review_phrases)))
