"""Every feature's settings together: what :class:`features.FeatureContext` hands each installer."""

from __future__ import annotations

from features.guardrails.settings import GuardrailSettings
from features.knowledge.settings import KnowledgeSettings
from features.limits.settings import LimitSettings
from features.media.settings import MediaSettings
from features.metrics.settings import MetricsSettings
from features.privacy.settings import PrivacySettings
from features.review.settings import ReviewSettings
from features.tools.settings import ToolSettings


class FeatureSettings(
    KnowledgeSettings,
    GuardrailSettings,
    LimitSettings,
    ReviewSettings,
    MetricsSettings,
    PrivacySettings,
    MediaSettings,
    ToolSettings,
):
    """The engine's settings plus those of every feature."""
