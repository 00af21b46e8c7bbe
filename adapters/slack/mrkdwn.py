"""Markdown (what models write) -> Slack mrkdwn (what Slack renders), for a reply's final text.

Slack never rejects mrkdwn, it only shows what it does not understand as it is, so this is best effort:
bold, italics, strikethrough, links, images, headings and bullets are converted; code blocks and inline
code are kept verbatim (minus the language tag Slack would print). ``&``, ``<`` and ``>`` are escaped
everywhere, as Slack asks, so a model's ``a < b`` or ``<div>`` is shown and not taken as markup, and a link
is only made to a URL: a model's text can never mention ``@channel``, ``@here``, a user group or a user.
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n.*?(?:^[ \t]*\1[ \t]*$|\Z)", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"(`+)(?!`).+?(?<!`)\1", re.DOTALL)
_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|(?<!\w)__(?=\S)(.+?)(?<=\S)__(?!\w)", re.DOTALL)
_ITALIC_STAR = re.compile(r"(?<![\w*])\*(?=[^\s*])([^*\n]+?)(?<=[^\s*])\*(?![\w*])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_IMAGE = re.compile(r"!\[([^\]\n]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_LINK = re.compile(r"\[([^\]\n]+)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_BULLET = re.compile(r"^([ \t]*)[-*+][ \t]+(?=\S)", re.MULTILINE)
_QUOTE = re.compile(r"^([ \t]*)&gt;", re.MULTILINE)  # a blockquote marker, not a "greater than"
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s|]+")  # with a scheme (https:, mailto:): never ! @ #
_RULE = re.compile(r"^[ \t]*([-*_])(?:[ \t]*\1){2,}[ \t]*$", re.MULTILINE)

# Private-use characters stand in for converted bold while italics are converted.
_BOLD_OPEN, _BOLD_CLOSE = "\ue000", "\ue001"


def escape(text: str) -> str:
    """Slack's three control characters escaped, as its API asks of message text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_mrkdwn(markdown: str) -> str:
    """``markdown`` as Slack mrkdwn; code blocks and inline code stay as written."""
    out: list[str] = []
    pos = 0
    for block in _FENCE.finditer(markdown):
        out.append(_convert_prose(markdown[pos : block.start()]))
        out.append(_code_block(block.group(0)))
        pos = block.end()
    out.append(_convert_prose(markdown[pos:]))
    return "".join(out)


def _code_block(block: str) -> str:
    """A fenced block as Slack's ```...```; the language tag after the opening fence is dropped."""
    _, _, body = block.partition("\n")
    closing = re.search(r"^[ \t]*(```|~~~)[ \t]*\Z", body, re.MULTILINE)
    if closing is not None:
        body = body[: closing.start()]
    return f"```\n{escape(body.rstrip(chr(10)))}\n```"


def _convert_prose(text: str) -> str:
    out: list[str] = []
    pos = 0
    for code in _INLINE_CODE.finditer(text):
        out.append(_convert_inline(text[pos : code.start()]))
        out.append(escape(code.group(0)))
        pos = code.end()
    out.append(_convert_inline(text[pos:]))
    return "".join(out)


def _convert_inline(text: str) -> str:
    if not text:
        return text
    links: list[str] = []

    def keep(rendered: str) -> str:
        links.append(rendered)
        return f"\ue002{len(links) - 1}\ue003"

    text = _IMAGE.sub(lambda m: keep(_link(m.group(2), m.group(1) or m.group(2))), text)
    text = _LINK.sub(lambda m: keep(_link(m.group(2), m.group(1))), text)
    text = escape(text)
    text = _RULE.sub("──────────", text)
    text = _HEADING.sub(lambda m: f"{_BOLD_OPEN}{_strip_bold(m.group(1))}{_BOLD_CLOSE}", text)
    text = _BOLD.sub(lambda m: f"{_BOLD_OPEN}{_bold_body(m)}{_BOLD_CLOSE}", text)
    text = _ITALIC_STAR.sub(r"_\1_", text)
    text = _STRIKE.sub(r"~\1~", text)
    text = _BULLET.sub(r"\1• ", text)
    text = _QUOTE.sub(r"\1>", text)
    text = text.replace(_BOLD_OPEN, "*").replace(_BOLD_CLOSE, "*")
    return re.sub("\ue002(\\d+)\ue003", lambda m: links[int(m.group(1))], text)


def _link(target: str, label: str) -> str:
    """A Markdown link as a Slack link when its target is a URL with a scheme; otherwise its label as text.

    Slack reads ``<!channel>``, ``<!here>``, ``<!everyone>``, ``<!subteam^ID>``, ``<@U123>`` and ``<#C123>``
    as mentions, so a model's ``[x](!channel)`` must never become ``<!channel|x>``: it would notify a
    whole channel.
    """
    if not _URL.fullmatch(target):
        return escape(label)
    return f"<{escape(target)}|{escape(label)}>"


def _bold_body(match: re.Match[str]) -> str:
    return match.group(1) if match.group(1) is not None else match.group(2)


def _strip_bold(text: str) -> str:
    return _BOLD.sub(_bold_body, text)
