"""Where a finished reply's Markdown becomes Telegram HTML.

Models write Markdown; Telegram renders a small HTML subset. Only a message's final text is rendered (a
half-written preview would have unbalanced markup), and the result is used only if it is well formed and
its visible text fits the limit; otherwise the message stays plain text. Supported: fenced code blocks
(with language), inline code, bold, italics, strikethrough, links, headings (as bold), bullets and quotes.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

_FENCE_OPEN = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([\w+#.-]*)[^\n]*$")
_INLINE_CODE = re.compile(r"(`+)(?=\S)(.+?)(?<=\S)\1")
_LINK = re.compile(r"\[([^\]\n]+)\]\(((?:https?://|mailto:|tg://)[^\s()]+(?:\([^\s()]*\))?[^\s()]*)\)")
_BOLD = (re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*"), re.compile(r"(?<!\w)__(?=\S)(.+?)(?<=\S)__(?!\w)"))
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_ITALIC = (
    re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])"),
    re.compile(r"(?<![\w_])_(?=[^\s_])(.+?)(?<=[^\s_])_(?![\w_])"),
)
_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(.+?)[ \t#]*$")
_BULLET = re.compile(r"^([ \t]*)[-*+][ \t]+(.*)$")
_QUOTE = re.compile(r"^[ \t]{0,3}>[ \t]?(.*)$")
_TAG = re.compile(r"<(/?)([a-z-]+)[^>]*>")
_HOLE_OPEN, _HOLE_CLOSE = "\ue000", "\ue001"
_HOLE = re.compile(f"{_HOLE_OPEN}(\\d+){_HOLE_CLOSE}")


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def _inline(line: str) -> str:
    """One line of Markdown prose as HTML: code and links first (kept verbatim), then emphasis."""
    holes: list[str] = []

    def hole(rendered: str) -> str:
        holes.append(rendered)
        return f"{_HOLE_OPEN}{len(holes) - 1}{_HOLE_CLOSE}"

    line = _INLINE_CODE.sub(lambda m: hole(f"<code>{_escape(m.group(2))}</code>"), line)
    line = _LINK.sub(
        lambda m: hole(f'<a href="{html.escape(m.group(2), quote=True)}">{_escape(m.group(1))}</a>'), line
    )
    line = _escape(line)
    for pattern in _BOLD:
        line = pattern.sub(r"<b>\1</b>", line)
    line = _STRIKE.sub(r"<s>\1</s>", line)
    for pattern in _ITALIC:
        line = pattern.sub(r"<i>\1</i>", line)
    return _HOLE.sub(lambda m: holes[int(m.group(1))], line)


def _prose_line(line: str) -> str:
    heading = _HEADING.match(line)
    if heading:
        return f"<b>{_inline(heading.group(1))}</b>"
    bullet = _BULLET.match(line)
    if bullet and bullet.group(2):
        return f"{bullet.group(1)}• {_inline(bullet.group(2))}"
    return _inline(line)


def markdown_to_html(text: str) -> str:
    """Telegram HTML for Markdown ``text`` (not validated: see :func:`render_final`)."""
    lines = text.split("\n")
    out: list[str] = []
    quote: list[str] = []

    def flush_quote() -> None:
        if quote:
            out.append("<blockquote>" + "\n".join(quote) + "</blockquote>")
            quote.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE_OPEN.match(line)
        if fence:
            flush_quote()
            marker, language = fence.group(1), fence.group(2)
            body: list[str] = []
            i += 1
            while i < len(lines) and not (
                lines[i].strip().startswith(marker) and not lines[i].strip().strip(marker[0])
            ):
                body.append(lines[i])
                i += 1
            i += 1  # the closing fence (or the end of an unclosed block)
            code = _escape("\n".join(body))
            if language:
                out.append(f'<pre><code class="language-{_escape(language)}">{code}</code></pre>')
            else:
                out.append(f"<pre>{code}</pre>")
            continue
        quoted = _QUOTE.match(line)
        if quoted:
            quote.append(_prose_line(quoted.group(1)))
        else:
            flush_quote()
            out.append(_prose_line(line))
        i += 1
    flush_quote()
    return "\n".join(out)


def well_formed(markup: str) -> bool:
    """Whether every tag in ``markup`` is closed in order (Telegram rejects overlapping tags)."""
    stack: list[str] = []
    for match in _TAG.finditer(markup):
        closing, name = match.group(1), match.group(2)
        if not closing:
            stack.append(name)
        elif not stack or stack.pop() != name:
            return False
    return not stack


def visible_text(markup: str) -> str:
    """What the user sees of ``markup``: the text Telegram counts against the length limit."""
    return html.unescape(_TAG.sub("", markup))


def render_final(text: str, max_chars: int, measure: Callable[[str], int]) -> str | None:
    """Telegram HTML for a message's final text, or ``None`` when it should be sent as plain text.

    Plain text is used when the text has no formatting, when the rendered markup is not well formed, or
    when its visible text would not fit ``max_chars`` (Telegram counts the length after parsing).
    """
    if _HOLE_OPEN in text or _HOLE_CLOSE in text:
        return None
    markup = markdown_to_html(text)
    if "<" not in markup:  # every "<" of the text itself is escaped: no tag means nothing to format
        return None
    if not well_formed(markup) or measure(visible_text(markup)) > max_chars:
        return None
    return markup
