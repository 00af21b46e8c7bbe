"""The conversation engine: one platform-neutral entry point from a user's message to a streamed reply.

``ConversationEngine.reply(message)`` yields the text the user should see, as it streams. Per turn:

1. clean the text (odd Unicode), answer commands (``/reset``, ``/help``, ``/start``) and empty input;
2. store the user's message (with its token count) *before* the model is called, as NOT complete: it is
   awaiting its answer. An input a guard refused is stored too (bounded to ``MAX_REFUSED_CHARS``), never
   complete;
3. build a prompt that fits (see :mod:`core.trimming`) from complete messages only, folding dropped history
   into the summary when the bot uses that strategy, and tell the user once when history was dropped or
   summarised;
4. stream the model's reply; on ``context_length_exceeded`` before any text, adopt the window the server
   named when it is smaller than ours and build the prompt again for it, else (or if that overflows too)
   trim to half the budget, and give up after that (see :mod:`core.model_outcomes`). A reply the server cut
   at ``max_tokens`` is shown with a notice and stored complete; one its content filter stopped is not;
5. store the reply. A complete reply completes its question in the same transaction, and both are fed back
   to the model from then on. When an output guard withdraws a reply, the refusal the user saw is stored as
   the (complete) answer, so the model knows the question was refused. A turn that failed, was
   interrupted, got an empty reply or whose process died leaves its question (and any partial reply)
   incomplete: kept in the store (review, /forget and retention see it) but left out of every later
   prompt, so the next message is answered as itself. (Left out rather than kept with a note: a failure
   the question's content triggered would recur on every later turn.)
6. log the turn (timestamp, session, bounded texts, latency, tokens) and record it in the store. Only
   tokens the server reported count, or for a stream that produced text, an estimate of what it produced:
   a failed call that produced nothing costs the user nothing.

Messages of one session are handled strictly in arrival order; sessions run concurrently.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field

from core.bot_profile import BotProfile
from core.clock import Clock, SystemClock
from core.errors import ContextTooLong, ModelError, ModelRejected, ModelTimeout
from core.hooks import Retraction, TurnHooks, Verdict
from core.incoming import IncomingMessage
from core.model_client import ChatModel, ReplyStream, Usage
from core.model_outcomes import (
    DEFAULT_MAX_TOKENS_SHARE,
    LENGTH_NOTICE,
    adopt_window,
    filtered_message,
    reported_prompt,
    smaller_window,
    timeout_message,
)
from core.model_tokenize import ServerTokenCounter
from core.prompt import PromptBuilder
from core.store import ConversationStore, TurnRecord
from core.tokens import TokenCounter
from core.trimming import cut_to_tokens, prompt_budget, view_for_prompt

log = logging.getLogger(__name__)
turn_log = logging.getLogger("chatbot.turns")

EMPTY_INPUT = "I got an empty message. Type a question and I'll answer it."
UNAVAILABLE = "⚠️ The model is unavailable right now. Please try again in a moment."
REJECTED = (
    "⚠️ The model server refused this request ({reason}). The bot's operator needs to check its settings."
)
INTERRUPTED = "\n\n⚠️ The reply was interrupted: the model is unavailable right now. Please try again."
TOO_LONG = (
    "⚠️ This conversation no longer fits the model's context, even trimmed. Send /reset to start afresh."
)
EMPTY_REPLY = "(The model returned an empty reply. Please rephrase or try again.)"
NOTICE_INPUT_CUT = "ℹ️ Your message was very long; I read only its first {n:,} characters.\n\n"

COMMANDS = ("/reset", "/help", "/start")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # Unicode Cc, less \t \n \r


def clean_text(text: str) -> str:
    """The text with lone surrogates, NULs and other control characters (not newlines or tabs) removed."""
    text = text.encode("utf-8", "replace").decode("utf-8") if _has_surrogates(text) else text
    return _CONTROL.sub("", text.replace("\r\n", "\n"))


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_command(text: str, extra: Iterable[str] = ()) -> str | None:
    """``/reset`` for ``/reset`` or ``/RESET now``; ``None`` for anything else.

    ``/reset@somebot`` is another bot's command, so it is not one: adapters take their own bot's name off
    (Telegram's ``/reset@thisbot`` arrives as ``/reset``), and what still names a bot is plain text.
    """
    stripped = text.strip()
    if not stripped.startswith("/"):
        return None
    word = stripped.split(maxsplit=1)[0].lower()
    if "@" in word:
        return None
    return word if word in COMMANDS or word in extra else None


MAX_REFUSED_CHARS = 4_000  # of an input a guard refused, what the store keeps
LOG_TEXT_CHARS = 4_000  # of a turn's texts, what the turn log shows
NOT_KEPT = "\n[… {n:,} more characters not kept; the text had {total:,}]"


def bounded(text: str, limit: int) -> str:
    """``text`` whole when it is at most ``limit`` characters, else its start and a marker with its length."""
    if len(text) <= limit:
        return text
    return text[:limit] + NOT_KEPT.format(n=len(text) - limit, total=len(text))


@dataclass
class _ReplyState:
    """What one turn's model call produced so far, for storing, logging and billing it however it ends."""

    parts: list[str] = field(default_factory=list)  # the model's text (withdrawn text included)
    status: str = "ok"
    shown: str | None = None  # a refusal shown instead of the model's withdrawn text
    usage: Usage | None = None  # as the server reported it
    prompt_estimate: int = 0  # our estimate of the prompt, for a stream that ended without usage


class _SessionLocks:
    """One FIFO lock per session, forgotten when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class ConversationEngine:
    """Runs conversations for one bot over an injected store, model, token counter and clock."""

    def __init__(
        self,
        bot: BotProfile,
        store: ConversationStore,
        model: ChatModel,
        counter: TokenCounter,
        *,
        clock: Clock | None = None,
        hooks: TurnHooks | None = None,
    ) -> None:
        self.bot = bot
        self.store = store
        self.model = model
        self.counter = counter
        self.clock = clock or SystemClock()
        self.hooks = hooks or TurnHooks()
        self.locks = _SessionLocks()
        self.prompts = PromptBuilder(bot, store, model, counter, context_share=self.hooks.context_share)
        self.max_tokens_share = DEFAULT_MAX_TOKENS_SHARE  # of a window learned from an overflow, for a reply
        self.server_tokens: ServerTokenCounter | None = None  # exact counts, from servers that can count

    async def reply(self, message: IncomingMessage) -> AsyncIterator[str]:
        """The reply to ``message``, as text chunks to show the user in order."""
        async with self.locks.hold(message.session_id), aclosing(self._turn(message)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def reply_text(self, message: IncomingMessage) -> str:
        """The whole reply at once (for callers that do not stream)."""
        parts: list[str] = []
        async for chunk in self.reply(message):
            if isinstance(chunk, Retraction):
                parts.clear()
            parts.append(chunk)
        return "".join(parts)

    async def _turn(self, message: IncomingMessage) -> AsyncGenerator[str]:
        started_wall, started = time.time(), self.clock.now()
        session = message.session_id
        text = clean_text(message.text)
        command = parse_command(text, self.hooks.commands)
        if command is not None:
            answer = await self._command(command, message)
            turn = self._record(message, text, answer, started_wall, "command")
            await self._observe(message, turn)
            yield answer
            return
        if not text.strip():
            yield EMPTY_INPUT
            return

        prompt_text = view_for_prompt(text, self.bot.max_input_chars)
        await self._count_exactly(prompt_text)
        user_tokens = self.counter.message_tokens(prompt_text)
        verdict = await self._check_input(message, text)
        if verdict is not None:
            # Stored (nothing a user said is lost) but never part of the model's context, in a bounded form
            # (a refused 1 MB paste is not kept whole), and a guard may keep a redacted form of it (a pasted
            # credential never reaches the database).
            refused = verdict.stored_text if verdict.stored_text is not None else text
            stored = bounded(refused, MAX_REFUSED_CHARS)
            await self.store.add_message(
                session, "user", stored, user_tokens, user_id=message.user_id, complete=False
            )
            log.warning("%s: input blocked (%s)", session, verdict.reason)
            turn = self._record(message, stored, verdict.reply, started_wall, verdict.status)
            await self.store.record_turn(turn)
            await self._observe(message, turn)
            yield verdict.reply
            return
        # Stored before the model is called, awaiting its answer: it joins the model's context only when a
        # complete reply is stored (see the module docstring).
        question_id = await self.store.add_message(
            session, "user", text, user_tokens, user_id=message.user_id, complete=False
        )
        if len(text) > self.bot.max_input_chars:
            yield NOTICE_INPUT_CUT.format(n=self.bot.max_input_chars)

        state = _ReplyState()
        try:
            context = await self._context(message, prompt_text)
            streamed = self._answer(message, question_id, prompt_text, user_tokens, context, state)
            async with aclosing(streamed) as chunks:
                async for chunk in chunks:
                    yield chunk
        except ContextTooLong:
            state.status = "error"
            yield TOO_LONG if not state.parts else INTERRUPTED
        except ModelRejected as exc:
            state.status = "error"
            log.error("%s: %s", session, exc)
            yield REJECTED.format(reason=str(exc).split(":")[0]) if not state.parts else INTERRUPTED
        except ModelTimeout as exc:
            state.status = "error" if not state.parts else "interrupted"
            log.warning("%s: %s", session, exc)
            words = timeout_message(exc, after_text=bool(state.parts))
            yield words or (UNAVAILABLE if not state.parts else INTERRUPTED)
        except ModelError as exc:
            state.status = "error" if not state.parts else "interrupted"
            log.warning("%s: %s", session, exc)
            yield UNAVAILABLE if not state.parts else INTERRUPTED
        except BaseException:
            state.status = "interrupted"
            raise
        finally:
            await self._finish_turn(message, text, question_id, state, started_wall, started)

    async def _answer(
        self,
        message: IncomingMessage,
        question_id: int,
        prompt_text: str,
        user_tokens: int,
        context: str,
        state: _ReplyState,
    ) -> AsyncGenerator[str]:
        """Stream the model's reply into ``state`` and yield what the user sees; model errors propagate.

        On ``context_length_exceeded`` before any text: when the server named a window smaller than ours, the
        bot adopts it and the prompt is built again for it; then (or when no window came) it is trimmed to
        half and sent once more.
        """
        session = message.session_id
        verdict: Verdict | None = None
        harder = adopted = False
        for _ in range(3):
            prompt = await self.prompts.build(
                session, question_id, prompt_text, user_tokens, context, harder=harder
            )
            state.prompt_estimate = round(prompt.raw_tokens * self.counter.correction)
            if prompt.notice:
                yield prompt.notice
            stream = self.model.stream(self.bot.model_name, prompt.messages, self.bot.params)
            try:
                so_far = ""  # grown in place, not re-joined from ``parts`` on every delta
                async with aclosing(_deltas(stream)) as deltas:
                    async for delta in deltas:
                        state.parts.append(delta)
                        so_far += delta
                        verdict = self._check_partial(message, so_far)
                        if verdict is not None:
                            break
                        yield delta
            except ContextTooLong as exc:
                if state.parts or harder:
                    raise
                adopted, harder = self._after_overflow(session, exc, prompt.raw_tokens, adopted)
                continue
            if stream.usage is not None:
                state.usage = stream.usage
                # the raw estimate: the correction learns the whole error, not what is left after itself
                self.counter.observe_usage(prompt.raw_tokens, stream.usage.prompt_tokens)
            break
        produced = "".join(state.parts)
        finish = getattr(stream, "finish_reason", None)
        if verdict is None and finish == "content_filter":
            state.status = "filtered"  # the question stays incomplete: it would be filtered again
            yield filtered_message(after_text=bool(produced.strip()))
            return
        if verdict is None and produced:
            verdict = await self._check_reply(message, produced)
        if verdict is not None:
            log.warning("%s: reply withdrawn (%s)", session, verdict.reason)
            state.status = verdict.status
            state.shown = verdict.reply  # store and log what the user saw, never the withdrawn text
            yield Retraction(verdict.reply)
        elif not produced.strip():
            state.status = "empty"
            yield EMPTY_REPLY
        elif finish == "length":
            state.status = "length"  # stored complete: the user saw it, and the model may continue it
            yield LENGTH_NOTICE

    def _after_overflow(
        self, session: str, exc: ContextTooLong, estimate: int, adopted: bool
    ) -> tuple[bool, bool]:
        """Learn what an overflow says; ``(adopted, harder)`` for the next attempt.

        A window smaller than ours is adopted for this engine (logged, it happens once per window) and the
        prompt rebuilt for it; otherwise, or once adopted already, the next prompt is trimmed harder.
        """
        reported = reported_prompt(exc, self.bot.params.max_tokens, estimate)
        if reported is not None:
            self.counter.observe_usage(estimate, reported)  # our raw estimate, as with a usage report
        window = smaller_window(exc, self.bot)
        if window is None or adopted:
            log.warning("%s: server says the prompt is too long; trimming harder", session)
            return adopted, True
        log.warning(
            "the model server's context window is %d tokens, not the %d we budgeted for; using %d from now on",
            window,
            self.bot.window,
            window,
        )
        self.bot = adopt_window(self.bot, window, self.max_tokens_share)
        self.prompts.bot = self.bot
        return True, False

    def _record(
        self, message: IncomingMessage, text: str, reply: str, started: float, status: str
    ) -> TurnRecord:
        """The record of a turn the model took no part in."""
        return TurnRecord(
            session_id=message.session_id,
            user_text=text,
            reply_text=reply,
            started_at=started,
            latency_ms=0.0,
            prompt_tokens=0,
            completion_tokens=0,
            status=status,
            model="",
            user_id=message.user_id,
            bot=self.bot.name,
            platform=message.platform,
        )

    async def _check_input(self, message: IncomingMessage, text: str) -> Verdict | None:
        for guard in self.hooks.input_guards:
            verdict = await guard.check_input(message, text)
            if verdict is not None:
                return verdict
        return None

    def _check_partial(self, message: IncomingMessage, text: str) -> Verdict | None:
        for guard in self.hooks.output_guards:
            verdict = guard.check_partial(message, text)
            if verdict is not None:
                return verdict
        return None

    async def _check_reply(self, message: IncomingMessage, text: str) -> Verdict | None:
        for guard in self.hooks.output_guards:
            verdict = await guard.check_reply(message, text)
            if verdict is not None:
                return verdict
        return None

    async def _context(self, message: IncomingMessage, text: str) -> str:
        if not self.hooks.context_sources:
            return ""
        allowance = int(prompt_budget(self.bot) * self.hooks.context_share)
        pieces = []
        for source in self.hooks.context_sources:
            try:
                piece = await source.context_for(message, text, allowance)
            except Exception:
                log.exception("%s: a context source failed; answering without it", message.session_id)
                continue
            if piece:
                pieces.append(piece)
        context = "\n\n".join(pieces)
        if context and self.counter.message_tokens(context) > allowance:
            context = cut_to_tokens(context, allowance, self.counter)
        return context

    async def _observe(self, message: IncomingMessage, turn: TurnRecord) -> None:
        self._log(turn)
        for observer in self.hooks.observers:
            try:
                await observer.on_turn(message, turn)
            except Exception:
                log.exception("%s: a turn observer failed", message.session_id)

    async def _finish_turn(
        self,
        message: IncomingMessage,
        text: str,
        question_id: int,
        state: _ReplyState,
        started_wall: float,
        started: float,
    ) -> None:
        """Store the reply and the turn's record; a complete reply also completes its question."""
        latency_ms = (self.clock.now() - started) * 1000.0
        prompt_tokens, completion_tokens = self._billed(state)
        reply = state.shown if state.shown is not None else "".join(state.parts)
        turn = TurnRecord(
            session_id=message.session_id,
            user_text=text,
            reply_text=reply,
            started_at=started_wall,
            latency_ms=latency_ms,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            status=state.status,
            model=self.bot.model_name,
            user_id=message.user_id,
            bot=self.bot.name,
            platform=message.platform,
        )
        # What the user saw in full answers the question: a complete reply, or the refusal that replaced a
        # withdrawn one (so the model knows it was refused and the question is not re-sent as new).
        complete = state.status in ("ok", "length") or state.shown is not None
        if complete and state.shown is None:
            await self._count_exactly(reply)  # fed back to the model from now on
        save = (
            self.store.save_reply(
                message.session_id,
                reply,
                self.counter.message_tokens(reply),
                complete=complete,
                turn=turn,
                question_id=question_id,
            )
            if reply.strip()
            else self.store.record_turn(turn)
        )
        try:
            await asyncio.shield(save)
        except Exception:
            log.exception("%s: could not store the reply", message.session_id)
        await self._observe(message, turn)

    async def _count_exactly(self, text: str) -> None:
        """Teach the counter the server's exact count of ``text`` when the server can count (llama.cpp,
        vLLM: see :mod:`core.model_tokenize`, cached there); elsewhere, or on any failure, it estimates."""
        if self.server_tokens is None or not text:
            return
        try:
            exact = await self.server_tokens.count(text)
        except Exception:
            log.warning("counting tokens on the model server failed; estimating", exc_info=True)
            return
        if exact is not None:
            self.counter.learn(text, exact)

    def _billed(self, state: _ReplyState) -> tuple[int, int]:
        """``(prompt, completion)`` tokens the turn cost: what the server reported, else, for a stream that
        produced text, our estimate of it; a turn that produced nothing cost nothing (a 503 is not billed)."""
        produced = "".join(state.parts)
        if state.usage is not None:
            completion = state.usage.completion_tokens or (self.counter.count(produced) if produced else 0)
            return state.usage.prompt_tokens, completion
        if produced:
            return state.prompt_estimate, self.counter.count(produced)
        return 0, 0

    def _log(self, turn: TurnRecord) -> None:
        if turn_log.isEnabledFor(logging.INFO):
            turn_log.info(
                json.dumps(
                    {
                        "ts": round(turn.started_at, 3),
                        "session": turn.session_id,
                        "user": turn.user_id,
                        "user_text": bounded(turn.user_text, LOG_TEXT_CHARS),
                        "reply_text": bounded(turn.reply_text, LOG_TEXT_CHARS),
                        "latency_ms": round(turn.latency_ms, 1),
                        "prompt_tokens": turn.prompt_tokens,
                        "completion_tokens": turn.completion_tokens,
                        "status": turn.status,
                        "model": turn.model,
                    },
                    ensure_ascii=False,
                )
            )

    async def _command(self, command: str, message: IncomingMessage) -> str:
        handler = self.hooks.commands.get(command)
        if handler is not None:
            return await handler(message)
        session = message.session_id
        if command == "/reset":
            deleted = await self.store.reset(session)
            return (
                "Done: I've forgotten this conversation."
                if deleted
                else "Nothing to forget: we're starting fresh."
            )
        if command == "/start":
            return self.bot.greeting
        return default_help(self.bot, self.hooks.help_lines)


def default_help(bot: BotProfile, extra_lines: Iterable[str] = ()) -> str:
    about = bot.description or "I'm a chat bot."
    lines = [
        "/reset: forget this conversation and start afresh",
        *extra_lines,
        "/help: show this help",
    ]
    return (
        f"{about}\n\nJust write to me and I'll answer. I remember this conversation until you reset it.\n"
        + "\n".join(lines)
    )


async def _deltas(stream: ReplyStream) -> AsyncGenerator[str]:
    """The stream's deltas as a generator we can close early (a guard stopped the reply).

    The stream's own iterator is closed here, at once, rather than whenever the garbage collector gets to
    it: closing it ends the HTTP response and frees the model slot before the user sees the refusal.
    """
    iterator = aiter(stream)
    try:
        async for delta in iterator:
            yield delta
    finally:
        close = getattr(iterator, "aclose", None)
        if close is not None:
            await close()
