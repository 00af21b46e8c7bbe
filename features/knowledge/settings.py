"""The knowledge base's settings: the embeddings server and model, retrieval and chunking."""

from __future__ import annotations

from pydantic import Field, SecretStr

from core.config import OPENAI_DEFAULT_URL, EngineSettings
from core.errors import ConfigError


class KnowledgeSettings(EngineSettings):
    """The knowledge base's settings (the embeddings server defaults to the chat one, hence the base)."""

    embedding_model: str = Field(default="text-embedding-3-small", alias="CHATBOT_EMBEDDING_MODEL")
    embedding_base_url: str | None = Field(default=None, alias="CHATBOT_EMBEDDING_BASE_URL")
    embedding_api_key: SecretStr | None = Field(default=None, alias="CHATBOT_EMBEDDING_API_KEY")
    embedding_max_tokens: int = Field(default=8191, gt=0, alias="CHATBOT_EMBEDDING_MAX_TOKENS")
    knowledge_top_k: int = Field(default=4, gt=0, alias="CHATBOT_KNOWLEDGE_TOP_K")
    knowledge_min_score: float = Field(default=0.3, alias="CHATBOT_KNOWLEDGE_MIN_SCORE")
    chunk_tokens: int = Field(default=300, gt=20, alias="CHATBOT_CHUNK_TOKENS")
    chunk_overlap: int = Field(default=40, ge=0, alias="CHATBOT_CHUNK_OVERLAP")

    def embedding_url(self) -> str:
        """The embeddings server: ``CHATBOT_EMBEDDING_BASE_URL``, else the chat server."""
        return self.embedding_base_url or self.openai_base_url

    def embedding_key(self) -> str:
        """The key for the embeddings server: ``CHATBOT_EMBEDDING_API_KEY``, else the chat key."""
        if self.embedding_api_key is not None and self.embedding_api_key.get_secret_value():
            return self.embedding_api_key.get_secret_value()
        if self.openai_api_key is not None and self.openai_api_key.get_secret_value():
            return self.openai_api_key.get_secret_value()
        if self.embedding_url().rstrip("/") == OPENAI_DEFAULT_URL:
            raise ConfigError(
                "no API key for OpenAI embeddings: set CHATBOT_EMBEDDING_API_KEY or OPENAI_API_KEY, "
                "or CHATBOT_EMBEDDING_BASE_URL to a local server."
            )
        return "not-needed"
