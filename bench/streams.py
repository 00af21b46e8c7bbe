"""What the fake model streams in the platform benchmarks: reply texts and their pace.

Replies are plain prose in paragraphs with a little Markdown bold, so each platform's final edit also does
its formatting work (Telegram HTML, Slack mrkdwn) as it would for a real model's answer.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any

from tests.fakes.openai_server import Reply

_WORDS = (
    "the bot streams each reply into one message and edits it in place while the model writes "
    "until the final edit shows the whole answer formatted and complete for the user to read"
).split()


def reply_text(chars: int, seed: int = 0) -> str:
    """At most ``chars`` characters of prose (a few fewer where the cut falls after a sentence): sentences
    of 12 words, paragraphs of 5 sentences."""
    sentences: list[str] = []
    length = 0
    i = seed
    while length < chars:
        picked = [_WORDS[(i * 7 + k) % len(_WORDS)] for k in range(12)]
        picked[3] = f"**{picked[3]}**" if i % 4 == 0 else picked[3]
        sentence = f"Sentence {i - seed + 1} says that " + " ".join(picked) + "."
        sentences.append(sentence)
        length += len(sentence) + 1
        i += 1
    paragraphs = [" ".join(sentences[j : j + 5]) for j in range(0, len(sentences), 5)]
    return "\n\n".join(paragraphs)[: chars - 1].rstrip(" .") + "."


def words(text: str) -> list[str]:
    """The words a user reads, whatever the formatting: no Markdown, mrkdwn or "still writing" marker."""
    return re.sub(r"[*_▌]", " ", text).split()


@dataclass(frozen=True, slots=True)
class Stream:
    """``chars`` of reply in ``chunks`` deltas, ``delay`` seconds apart (the stream lasts about
    ``(chunks - 1) * delay``)."""

    name: str
    chars: int
    chunks: int
    delay: float

    @property
    def seconds(self) -> float:
        return (self.chunks - 1) * self.delay

    def longer(self, seconds: float) -> Stream:
        """The same reply streamed ``seconds`` longer (each gap between chunks a little wider)."""
        return replace(self, delay=self.delay + seconds / max(1, self.chunks - 1))

    def reply(self, seed: int = 0) -> Reply:
        text = reply_text(self.chars, seed)
        return Reply(text=text, chunk_size=math.ceil(len(text) / self.chunks), delay=self.delay)

    def describe(self) -> str:
        return f"{self.chars:,} chars, {self.chunks} chunks / {self.seconds:.0f} s"


class ReplyBook:
    """The fake model's answers by prompt: the reply to a prompt whose last user message is the key.

    Set as ``FakeOpenAI.default``, so concurrent conversations each get their own reply at their own pace.
    """

    def __init__(self) -> None:
        self.replies: dict[str, Reply] = {}

    def __setitem__(self, key: str, reply: Reply) -> None:
        self.replies[key] = reply

    def __getitem__(self, key: str) -> Reply:
        return self.replies[key]

    def __call__(self, body: dict[str, Any]) -> Reply:
        users = [m for m in body["messages"] if m.get("role") == "user"]
        key = str(users[-1]["content"]) if users else ""
        return self.replies.get(key, Reply(text=f"You said: {key}"))
