"""The conversation engine: one platform-neutral entry point from a user's message to a streamed reply.

``ConversationEngine.reply(message)`` yields the text the user should see, as it streams. Per turn:

1. clean the text (odd Unicode), answer commands (the registry in :mod:`core.commands`) and empty input;
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

With tools (``engine.tools``, a :class:`core.tool_loop.ToolRunner`), step 4 may take several model calls:
the tool loop runs the calls the model asks for and streams a progress line meanwhile; the calls and
their results are stored with the reply and fed back with it (see :mod:`core.tools`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, asynccontextmanager

from core.attachments import TEXT_ONLY, AttachmentReading
from core.bot_profile import BotProfile
from core.chat_choice import choice_commands, choice_line
from core.clock import Clock, SystemClock
from core.commands import Command, Commands
from core.errors import ContextTooLong, ModelError, ModelRejected, ModelTimeout
from core.hooks import Progress, Retraction, TurnHooks
from core.incoming import IncomingMessage
from core.model_client import ChatMessage, ChatModel, Usage
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
from core.prompt import Prompt, PromptBuilder
from core.shared_state import SharedState
from core.store import ConversationStore, EventQuestions, TurnRecord
from core.tokens import TokenCounter
from core.tool_loop import ToolRunner, exchange_tokens
from core.tools import dump_steps
from core.trimming import cut_to_tokens, prompt_budget, view_for_prompt
from core.turn import Refusal, Turn, TurnStatus

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

NOTICE_FILES_IGNORED = "ℹ️ I can only read text here, so I answered your message without its files.\n\n"
NOTICE_READ_FAILED = "⚠️ Something went wrong reading your files; I answered your text only.\n\n"
READ_FAILED = "⚠️ Something went wrong reading your files. Please try again, or type your message."
FILES_PLACEHOLDER = "[files: could not be read]"
FILES_NOT_READ = "[files: not read, this bot reads text only]"

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


MAX_REFUSED_CHARS = 4_000  # of an input a guard refused, what the store keeps
LOG_TEXT_CHARS = 4_000  # of a turn's texts, what the turn log shows
NOT_KEPT = "\n[… {n:,} more characters not kept; the text had {total:,}]"


def bounded(text: str, limit: int) -> str:
    """``text`` whole when it is at most ``limit`` characters, else its start and a marker with its length."""
    if len(text) <= limit:
        return text
    return text[:limit] + NOT_KEPT.format(n=len(text) - limit, total=len(text))


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
        self.commands = Commands(
            [
                Command("start", "Say hello", self._start),
                Command("help", "What I can do and how to talk to me", self._help),
                Command("reset", "Forget this conversation and start afresh", self._reset),
            ]
        )
        for command in choice_commands(self):  # /mode, /model: when the bot offers a choice
            self.commands.add(command)
        self.prompts = PromptBuilder(self)  # reads the engine's bot, store, model and counter per prompt
        self.max_tokens_share = DEFAULT_MAX_TOKENS_SHARE  # of a window learned from an overflow, for a reply
        self.server_tokens: ServerTokenCounter | None = None  # exact counts, from servers that can count
        # state every worker process shares (Redis when CHATBOT_REDIS_URL is set; None: one process)
        self.shared: SharedState | None = None
        self.tools: ToolRunner | None = None  # the bot's tools (features/tools installs them)
        self.session_prefix = ""  # this bot's share of the session ids (bots sharing a platform and a store)
        self._turn_bots: dict[str, BotProfile] = {}  # the profile of the turn running in each session

    def session_key(self, platform_session: str) -> str:
        """The session id of an adapter's ``telegram:42`` for this bot: ``orbit/telegram:42`` when the bot
        has a prefix, so two bots on one platform and one store never share a conversation."""
        return f"{self.session_prefix}/{platform_session}" if self.session_prefix else platform_session

    def turn_profile(self, session_id: str) -> BotProfile:
        """The profile of the turn running in ``session_id`` (its mode's prompt, for guards), else the bot's."""
        return self._turn_bots.get(session_id, self.bot)

    async def profile_for(self, session_id: str) -> BotProfile:
        """The bot as a turn in ``session_id`` starting now sees it: the current profile (a reloaded bots
        file replaces ``self.bot``) with the chat's ``/mode`` and ``/model`` choice."""
        bot = self.bot
        if not (bot.modes or bot.models):
            return bot
        choice = await self.store.chat_choice(session_id)
        return bot.choosing(choice.mode, choice.model)

    async def reply(self, message: IncomingMessage) -> AsyncIterator[str]:
        """The reply to ``message``, as text chunks to show the user in order."""
        session = message.session_id
        async with self.locks.hold(session):
            bot = await self.profile_for(session)  # held for the whole turn, whatever changes meanwhile
            self._turn_bots[session] = bot
            try:
                async with aclosing(self._turn(message, bot)) as chunks:
                    async for chunk in chunks:
                        yield chunk
            finally:
                del self._turn_bots[session]

    async def reply_text(self, message: IncomingMessage) -> str:
        """The whole reply at once (for callers that do not stream)."""
        parts: list[str] = []
        async for chunk in self.reply(message):
            if isinstance(chunk, Retraction):
                parts.clear()
            if not isinstance(chunk, Progress):
                parts.append(chunk)
        return "".join(parts)

    async def _turn(self, message: IncomingMessage, bot: BotProfile) -> AsyncGenerator[str]:
        """One turn, as named steps: a command, empty input, a refused input, or the model's answer."""
        turn = Turn(message, clean_text(message.text), bot, started=self.clock.now())
        command = self.commands.parse(turn.text)
        if command is not None:
            yield await self._answer_command(turn, command)
            return
        reading = await self._read_attachments(turn) if message.attachments else None
        if reading is not None and reading.answer is not None:
            yield await self._answer_unreadable(turn, reading)
            return
        if not turn.text.strip():
            yield EMPTY_INPUT
            return
        prompt_text = view_for_prompt(turn.text, bot.max_input_chars)
        extra = reading.extra if reading is not None else ""
        stored_tokens = self.counter.message_tokens(prompt_text) if extra else None
        if extra:  # a document's text: in this turn's prompt, never stored
            prompt_text = f"{prompt_text}\n\n{extra}"
        await self._count_exactly(prompt_text)
        user_tokens = self.counter.message_tokens(prompt_text)
        # guards judge the user's own words (caption, transcripts); a document's text is read like retrieved
        # context: cut to its share of the budget, never stored, not taken for a flood or an overlong message
        words = reading.words if reading is not None and reading.words is not None else turn.text
        refusal = await self._check_input(message, words)
        if refusal is not None:
            yield await self._refuse_input(turn, refusal, user_tokens)
            return
        await self._store_question(turn, user_tokens if stored_tokens is None else stored_tokens)
        for notice in reading.notices if reading is not None else ():
            yield notice
        if len(turn.text) > bot.max_input_chars:
            yield NOTICE_INPUT_CUT.format(n=bot.max_input_chars)
        async with aclosing(self._ask_model(turn, prompt_text, user_tokens)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def _read_attachments(self, turn: Turn) -> AttachmentReading:
        """Read the message's files into the turn: ``turn.text`` becomes what is stored (caption,
        transcripts, placeholders) and ``turn.images`` what goes to the model with it. A reader that fails
        costs the files, never the caption; without a reader, files get "I can only read text"."""
        message, reader = turn.message, self.hooks.attachments
        caption = turn.text
        if reader is None:
            reading = AttachmentReading(
                text=f"{caption}\n\n{FILES_NOT_READ}".strip(),
                words=caption,
                notices=(NOTICE_FILES_IGNORED,) if caption.strip() else (),
                answer=None if caption.strip() else TEXT_ONLY,
            )
        else:
            try:
                reading = await reader.read(message, caption)
            except Exception:
                log.exception("%s: reading the attached files failed", message.session_id)
                placeholder = f"{caption}\n\n{FILES_PLACEHOLDER}".strip()
                reading = AttachmentReading(
                    text=placeholder,
                    words=caption,
                    notices=(NOTICE_READ_FAILED,) if caption.strip() else (),
                    answer=None if caption.strip() else READ_FAILED,
                )
        for problem in reading.problems:
            log.warning("%s: %s", message.session_id, problem)
        turn.text = clean_text(reading.text)
        turn.images = reading.images
        return reading

    async def _answer_unreadable(self, turn: Turn, reading: AttachmentReading) -> str:
        """Files that left nothing to ask the model: the user is told why; the message (its placeholders)
        is stored, never complete, and the turn recorded, without a model call."""
        message = turn.message
        answer = "".join(reading.notices) + (reading.answer or "")
        stored = bounded(turn.text, MAX_REFUSED_CHARS)
        await self.store.add_message(
            message.session_id,
            "user",
            stored,
            self.counter.message_tokens(stored),
            user_id=message.user_id,
            complete=False,
        )
        turn.status = TurnStatus.UNREADABLE
        record = self._model_free_record(turn, stored, answer)
        await self.store.record_turn(record)
        await self._observe(message, record)
        return answer

    async def _answer_command(self, turn: Turn, command: Command) -> str:
        """A chat command's answer; the turn is logged and observed, not stored."""
        answer = await command.handler(turn.message)
        turn.status = TurnStatus.COMMAND
        await self._observe(turn.message, self._model_free_record(turn, turn.text, answer))
        return answer

    async def _refuse_input(self, turn: Turn, refusal: Refusal, user_tokens: int) -> str:
        """Store an input a guard (or a limit) refused, record the refusal, and return what the user sees.

        The input is stored (nothing a user said is lost) but never part of the model's context, in a
        bounded form (a refused 1 MB paste is not kept whole), and a guard may keep a redacted form of it (a
        pasted credential never reaches the database).
        """
        message = turn.message
        refused = refusal.stored_text if refusal.stored_text is not None else turn.text
        stored = bounded(refused, MAX_REFUSED_CHARS)
        await self.store.add_message(
            message.session_id, "user", stored, user_tokens, user_id=message.user_id, complete=False
        )
        log.warning("%s: input blocked (%s)", message.session_id, refusal.reason)
        turn.status = refusal.status
        record = self._model_free_record(turn, stored, refusal.reply)
        await self.store.record_turn(record)
        await self._observe(message, record)
        return refusal.reply

    async def _store_question(self, turn: Turn, user_tokens: int) -> None:
        """Store the question before the model is called, awaiting its answer: it joins the model's context
        only when a complete reply is stored (see the module docstring)."""
        message = turn.message
        if message.event_id and isinstance(self.store, EventQuestions):  # handled again: stored once
            turn.question_id = await self.store.add_question_once(
                message.session_id, message.event_id, turn.text, user_tokens, user_id=message.user_id
            )
            return
        turn.question_id = await self.store.add_message(
            message.session_id, "user", turn.text, user_tokens, user_id=message.user_id, complete=False
        )

    async def _ask_model(self, turn: Turn, prompt_text: str, user_tokens: int) -> AsyncGenerator[str]:
        """The model's answer as the user sees it. A failure becomes a message to the user and the turn's
        status; however the turn ends (cancelled too), its reply and record are stored."""
        session = turn.message.session_id
        try:
            context = await self._context(turn, prompt_text)
            streamed = self._stream_reply(turn, prompt_text, user_tokens, context)
            async with aclosing(streamed) as chunks:
                async for chunk in chunks:
                    yield chunk
            last = await self._settle_reply(turn)
            if last is not None:
                yield last
        except ContextTooLong:
            turn.status = TurnStatus.ERROR
            yield TOO_LONG if not turn.parts else INTERRUPTED
        except ModelRejected as exc:
            turn.status = TurnStatus.ERROR
            log.error("%s: %s", session, exc)
            yield REJECTED.format(reason=str(exc).split(":")[0]) if not turn.parts else INTERRUPTED
        except ModelTimeout as exc:
            turn.status = TurnStatus.ERROR if not turn.parts else TurnStatus.INTERRUPTED
            log.warning("%s: %s", session, exc)
            words = timeout_message(exc, after_text=bool(turn.parts))
            yield words or (UNAVAILABLE if not turn.parts else INTERRUPTED)
        except ModelError as exc:
            turn.status = TurnStatus.ERROR if not turn.parts else TurnStatus.INTERRUPTED
            log.warning("%s: %s", session, exc)
            yield UNAVAILABLE if not turn.parts else INTERRUPTED
        except BaseException:
            turn.status = TurnStatus.INTERRUPTED
            raise
        finally:
            await self._finish_turn(turn)

    async def _stream_reply(
        self, turn: Turn, prompt_text: str, user_tokens: int, context: str
    ) -> AsyncGenerator[str]:
        """Stream the model's reply into ``turn`` and yield it; stop early when an output guard withdraws it
        (``turn.refusal``). Model errors propagate.

        On ``context_length_exceeded`` before any text: when the server named a window smaller than ours, the
        bot adopts it and the prompt is built again for it; then (or when no window came) it is trimmed to
        half and sent once more.
        """
        session = turn.message.session_id
        harder = adopted = False
        tools = self._tools_on(session, turn.bot.model_name)
        for _ in range(3):
            prompt = await self.prompts.build(
                session,
                turn.question_id,
                prompt_text,
                user_tokens,
                context,
                harder=harder,
                images=turn.images,
                tools=tools,
                reserve=self.tools.reserve(prompt_budget(turn.bot, harder=harder))
                if tools and self.tools
                else 0,
                bot=turn.bot,
            )
            turn.prompt_estimate = round(prompt.raw_tokens * self.counter.correction)
            if prompt.notice:
                yield prompt.notice
            try:
                so_far = ""  # grown in place, not re-joined from ``parts`` on every delta
                async with aclosing(self._model_answer(turn, prompt, tools, harder)) as deltas:
                    async for delta in deltas:
                        if isinstance(delta, Progress):
                            yield delta
                            continue
                        turn.parts.append(delta)
                        so_far += delta
                        turn.refusal = self._check_partial(turn.message, so_far)
                        if turn.refusal is not None:
                            break
                        yield delta
            except ContextTooLong as exc:
                if turn.parts or harder or turn.tool_steps:
                    raise
                adopted, harder = self._after_overflow(turn, exc, prompt.raw_tokens, adopted)
                continue
            return

    def _tools_on(self, session: str, model: str) -> bool:
        """Whether this turn offers tools: the bot has some, the server takes them, and some are up (or a
        call waits for this session's confirmation)."""
        tools = self.tools
        if tools is None:
            return False
        accepts = getattr(self.model, "accepts_tools", None)
        if accepts is not None and not accepts(model):
            return False
        return tools.waiting(session) or bool(tools.offered())

    def _model_answer(self, turn: Turn, prompt: Prompt, tools: bool, harder: bool) -> AsyncGenerator[str]:
        """The model's answer to ``prompt``: one call, or with tools the tool loop's steps."""

        def call(
            turn: Turn, messages: list[ChatMessage], offer: list[dict[str, object]]
        ) -> AsyncGenerator[str]:
            return self._one_call(turn, messages, offer, prompt.raw_tokens)

        if not tools or self.tools is None:
            return call(turn, prompt.messages, [])
        room = max(0, prompt_budget(turn.bot, harder=harder) - prompt.tokens)
        return self.tools.steps(
            turn,
            prompt.messages,
            call,
            hooks=self.hooks,
            counter=self.counter,
            now=self.clock.now,
            room=room,
        )

    async def _one_call(
        self, turn: Turn, messages: list[ChatMessage], offer: list[dict[str, object]], raw_tokens: int
    ) -> AsyncGenerator[str]:
        """One streamed model call; what it asked for, how it ended and its usage go into ``turn``."""
        bot = turn.bot
        if offer:
            stream = self.model.stream(bot.model_name, messages, bot.params, tools=offer)
        else:
            stream = self.model.stream(bot.model_name, messages, bot.params)
        # The stream's own iterator is closed here, at once, rather than whenever the garbage collector gets
        # to it: closing it ends the HTTP response and frees the model slot before the user sees a refusal.
        iterator = aiter(stream)
        try:
            async for delta in iterator:
                yield delta
        finally:
            close = getattr(iterator, "aclose", None)
            if close is not None:
                await close()
        turn.finish_reason = getattr(stream, "finish_reason", None)
        turn.asked = list(getattr(stream, "tool_calls", None) or [])
        usage = turn.step_usage = stream.usage
        if usage is None:
            return
        if turn.usage is None:
            turn.usage = usage
            # the raw estimate: the correction learns the whole error, not what is left after itself
            self.counter.observe_usage(raw_tokens, usage.prompt_tokens)
        else:  # a later step of a tool loop: billed too
            turn.usage = Usage(
                turn.usage.prompt_tokens + usage.prompt_tokens,
                turn.usage.completion_tokens + usage.completion_tokens,
            )

    async def _settle_reply(self, turn: Turn) -> str | None:
        """The streamed reply's last chunk: a :class:`Retraction` when an output guard withdraws the reply
        (now, or while it streamed), a note when it was empty, filtered or cut at the length limit, else
        nothing."""
        produced = turn.produced
        if turn.refusal is None and turn.finish_reason == "content_filter":
            turn.status = TurnStatus.FILTERED  # the question stays incomplete: it would be filtered again
            return filtered_message(after_text=bool(produced.strip()))
        if turn.refusal is None and produced:
            turn.refusal = await self._check_reply(turn.message, produced)
        if turn.refusal is not None:
            log.warning("%s: reply withdrawn (%s)", turn.message.session_id, turn.refusal.reason)
            turn.status = turn.refusal.status
            turn.shown = turn.refusal.reply  # store and log what the user saw, never the withdrawn text
            return Retraction(turn.refusal.reply)
        if not produced.strip():
            turn.status = TurnStatus.EMPTY
            return EMPTY_REPLY
        if turn.finish_reason == "length":
            turn.status = TurnStatus.LENGTH  # stored complete: the user saw it, and the model may continue it
            return LENGTH_NOTICE
        return None

    def _after_overflow(
        self, turn: Turn, exc: ContextTooLong, estimate: int, adopted: bool
    ) -> tuple[bool, bool]:
        """Learn what an overflow says; ``(adopted, harder)`` for the next attempt.

        A window smaller than ours is adopted for this engine (logged, it happens once per window) and the
        prompt rebuilt for it; otherwise, or once adopted already, the next prompt is trimmed harder.
        """
        session = turn.message.session_id
        reported = reported_prompt(exc, turn.bot.params.max_tokens, estimate)
        if reported is not None:
            self.counter.observe_usage(estimate, reported)  # our raw estimate, as with a usage report
        window = smaller_window(exc, turn.bot)
        if window is None or adopted:
            log.warning("%s: server says the prompt is too long; trimming harder", session)
            return adopted, True
        log.warning(
            "the model server's context window is %d tokens, not the %d we budgeted for; using %d from now on",
            window,
            turn.bot.window,
            window,
        )
        self.bot = adopt_window(self.bot, window, self.max_tokens_share)
        turn.bot = adopt_window(turn.bot, window, self.max_tokens_share)
        return True, False

    def _model_free_record(self, turn: Turn, user_text: str, reply: str) -> TurnRecord:
        """The record of a turn the model took no part in."""
        return TurnRecord(
            session_id=turn.message.session_id,
            user_text=user_text,
            reply_text=reply,
            started_at=turn.started_at,
            latency_ms=0.0,
            prompt_tokens=0,
            completion_tokens=0,
            status=turn.status,
            model="",
            user_id=turn.message.user_id,
            bot=turn.bot.name,
            platform=turn.message.platform,
        )

    async def _check_input(self, message: IncomingMessage, text: str) -> Refusal | None:
        for guard in self.hooks.input_guards:
            refusal = await guard.check_input(message, text)
            if refusal is not None:
                return refusal
        return None

    def _check_partial(self, message: IncomingMessage, text: str) -> Refusal | None:
        for guard in self.hooks.output_guards:
            refusal = guard.check_partial(message, text)
            if refusal is not None:
                return refusal
        return None

    async def _check_reply(self, message: IncomingMessage, text: str) -> Refusal | None:
        for guard in self.hooks.output_guards:
            refusal = await guard.check_reply(message, text)
            if refusal is not None:
                return refusal
        return None

    async def _context(self, turn: Turn, text: str) -> str:
        message = turn.message
        if not self.hooks.context_sources:
            return ""
        allowance = int(prompt_budget(turn.bot) * self.hooks.context_share)
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

    async def _finish_turn(self, turn: Turn) -> None:
        """Store the reply and the turn's record; a complete reply also completes its question."""
        message = turn.message
        latency_ms = (self.clock.now() - turn.started) * 1000.0
        prompt_tokens, completion_tokens = self._billed(turn)
        reply = turn.reply
        record = TurnRecord(
            session_id=message.session_id,
            user_text=turn.text,
            reply_text=reply,
            started_at=turn.started_at,
            latency_ms=latency_ms,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            status=turn.status,
            model=turn.bot.model_name,
            user_id=message.user_id,
            bot=turn.bot.name,
            platform=message.platform,
        )
        # What the user saw in full answers the question: a complete reply, or the refusal that replaced a
        # withdrawn one (so the model knows it was refused and the question is not re-sent as new).
        complete = turn.status in (TurnStatus.OK, TurnStatus.LENGTH) or turn.shown is not None
        if complete and turn.shown is None:
            await self._count_exactly(reply)  # fed back to the model from now on
        tokens = self.counter.message_tokens(reply)
        with_tools: dict[str, str] = {}
        if turn.tool_steps and complete and turn.shown is None:  # the calls and results travel with it
            with_tools["tools"] = dump_steps(turn.tool_steps, turn.final_from)
            tokens += exchange_tokens(turn.tool_steps, self.counter)
        save = (
            self.store.save_reply(
                message.session_id,
                reply,
                tokens,
                complete=complete,
                turn=record,
                question_id=turn.question_id,
                **with_tools,
            )
            if reply.strip()
            else self.store.record_turn(record)
        )
        try:
            await asyncio.shield(save)
        except Exception:
            log.exception("%s: could not store the reply", message.session_id)
        await self._observe(message, record)

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

    def _billed(self, turn: Turn) -> tuple[int, int]:
        """``(prompt, completion)`` tokens the turn cost: what the server reported, else, for a stream that
        produced text, our estimate of it; a turn that produced nothing cost nothing (a 503 is not billed)."""
        produced = turn.produced
        if turn.usage is not None:
            completion = turn.usage.completion_tokens or (self.counter.count(produced) if produced else 0)
            return turn.usage.prompt_tokens, completion
        if produced:
            return turn.prompt_estimate, self.counter.count(produced)
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

    async def _start(self, message: IncomingMessage) -> str:
        return self.bot.greeting

    async def _help(self, message: IncomingMessage) -> str:
        now = await choice_line(self, message.session_id)
        return help_text(self.bot, self.commands) + (f"\n\n{now}" if now else "")

    async def _reset(self, message: IncomingMessage) -> str:
        if self.tools is not None:
            self.tools.forget(message.session_id)
        deleted = await self.store.reset(message.session_id)
        return (
            "Done: I've forgotten this conversation."
            if deleted
            else "Nothing to forget: we're starting fresh."
        )


def help_text(bot: BotProfile, commands: Commands) -> str:
    """What the bot is, how to talk to it, and every command it answers (one line each)."""
    about = bot.description or "I'm a chat bot."
    return (
        f"{about}\n\nJust write to me and I'll answer. I remember this conversation until you reset it.\n"
        + "\n".join(command.help_line for command in commands)
    )
