"""Each active session's newest stored messages, kept in memory so a turn does not re-read its window.

A turn reads the newest messages that fit the context window (:func:`core.trimming.fit_history`): at a
128k-token window that is thousands of rows, re-read from SQLite every turn although only the last question
and reply changed. :class:`RecentWindows` keeps, per session, the newest messages (complete or not, oldest
first) and the id below which it knows nothing (``lower``): every message of the session with an id above
``lower`` is in the entry, so a read whose range lies above it is answered from memory.

The store keeps it right: its own writes update it (a message added, a question completed by its reply), a
session's reset drops the session, deletions across sessions (``/forget``, retention) drop everything, and
a write by any other connection (another process on the same file) drops everything too, which the store
notices with SQLite's ``PRAGMA data_version`` before every read. Bounded: sessions are evicted least recently
used first once the cached text passes ``max_chars``, and a session keeps at most ``rows_per_session`` rows.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections import OrderedDict
from operator import attrgetter

from core.store import StoredMessage

ROW_OVERHEAD = 128  # characters charged per row besides its text: the tuple, its id and numbers
_ID = attrgetter("id")


class _Entry:
    """One session: ``rows`` oldest first; every message with ``id > lower`` is among them."""

    __slots__ = ("chars", "lower", "rows")

    def __init__(self, rows: list[StoredMessage], lower: int) -> None:
        self.rows = rows
        self.lower = lower
        self.chars = sum(len(row.content) for row in rows) + ROW_OVERHEAD * len(rows)


class RecentWindows:
    """An LRU of sessions' newest messages (see the module docstring)."""

    def __init__(self, *, max_chars: int = 32_000_000, rows_per_session: int = 8_192) -> None:
        self.max_chars = max_chars
        self.rows_per_session = rows_per_session
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._chars = 0

    def __len__(self) -> int:
        return len(self._entries)

    def lower(self, session_id: str) -> int | None:
        """The id at and below which the session's entry knows nothing; ``None`` without an entry."""
        entry = self._entries.get(session_id)
        return None if entry is None else entry.lower

    def read(self, session_id: str, after_id: int, before_id: int, limit: int) -> list[StoredMessage] | None:
        """Up to ``limit`` complete messages with ``after_id < id < before_id``, newest first, or ``None``
        when the entry does not hold them all (the caller reads the database)."""
        entry = self._entries.get(session_id)
        if entry is None:
            return None
        self._entries.move_to_end(session_id)
        rows = entry.rows
        hi = bisect_left(rows, before_id, key=_ID)
        lo = bisect_right(rows, max(after_id, entry.lower), hi=hi, key=_ID)
        found = [row for row in rows[lo:hi] if row.complete]
        if len(found) >= limit:
            found = found[len(found) - limit :] if limit > 0 else []
        elif after_id < entry.lower:
            return None  # older messages in the range may exist that the entry does not hold
        found.reverse()
        return found

    def merge(
        self, session_id: str, after_id: int, before_id: int, limit: int, newest_first: list[StoredMessage]
    ) -> None:
        """Take in a database answer: every message with ``after_id < id < before_id``, newest first, up to
        ``limit`` (complete or not). It joins the entry when it reaches up to what the entry holds."""
        covered_from = after_id if len(newest_first) < limit else newest_first[-1].id - 1
        older = newest_first[::-1]
        entry = self._entries.get(session_id)
        if entry is None:
            if before_id < 2**62:
                return  # newer messages may exist above the answer's range
            entry = _Entry(older, covered_from)
            self._entries[session_id] = entry
            self._chars += entry.chars
        else:
            if before_id != entry.lower + 1 or covered_from >= entry.lower:
                return  # the answer must end right below what the entry holds, and add to it
            self._entries.move_to_end(session_id)
            self._chars -= entry.chars
            entry = _Entry(older + entry.rows, covered_from)
            self._entries[session_id] = entry
            self._chars += entry.chars
        self._trim(session_id, entry)

    def added(self, session_id: str, message: StoredMessage) -> None:
        """This process stored ``message``."""
        entry = self._entries.get(session_id)
        if entry is None or message.id <= entry.lower:
            return
        if entry.rows and message.id < entry.rows[-1].id:
            insort(entry.rows, message, key=_ID)
        else:
            entry.rows.append(message)
        cost = len(message.content) + ROW_OVERHEAD
        entry.chars += cost
        self._chars += cost
        self._trim(session_id, entry)

    def completed(self, session_id: str, message_id: int) -> None:
        """This process marked a stored question complete (its reply came)."""
        entry = self._entries.get(session_id)
        if entry is None or message_id <= entry.lower:
            return
        rows = entry.rows
        at = bisect_left(rows, message_id, key=_ID)
        if at < len(rows) and rows[at].id == message_id:
            rows[at] = rows[at]._replace(complete=True)
        else:  # not where it must be: forget the session rather than guess
            self.drop(session_id)

    def drop(self, session_id: str) -> None:
        entry = self._entries.pop(session_id, None)
        if entry is not None:
            self._chars -= entry.chars

    def clear(self) -> None:
        self._entries.clear()
        self._chars = 0

    def _trim(self, session_id: str, entry: _Entry) -> None:
        excess = len(entry.rows) - self.rows_per_session
        if excess > 0:
            gone = entry.rows[:excess]
            del entry.rows[:excess]
            entry.lower = gone[-1].id
            cost = sum(len(row.content) for row in gone) + ROW_OVERHEAD * excess
            entry.chars -= cost
            self._chars -= cost
        while self._chars > self.max_chars and len(self._entries) > 1:
            oldest = next(iter(self._entries))
            if oldest == session_id:
                self._entries.move_to_end(session_id)
                oldest = next(iter(self._entries))
            self.drop(oldest)
