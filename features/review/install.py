"""Review triggers: flag conversations for a human to read (see :mod:`features.review.flags`, ``chatbot review``)."""

from __future__ import annotations

from features import FeatureContext
from features.review.flags import ReviewRepository, ReviewTrigger, parse_phrases

ORDER = 50


async def install(ctx: FeatureContext) -> None:
    repository = await ReviewRepository.open(ctx.settings.db_path)
    ctx.closers.append(repository.close)
    ctx.engine.hooks.observers.append(ReviewTrigger(repository, parse_phrases(ctx.settings.review_phrases)))
