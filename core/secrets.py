"""Credentials in text: the patterns of API keys, tokens, private keys and passwords in URLs, found or redacted.

One module, because three places need the same answer: log lines are redacted with it
(:mod:`core.log_setup`), a pasted credential is refused and stored redacted (the privacy feature's secret
guard), and review flags keep only redacted text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_BASE64_40 = r"(?<![A-Za-z0-9/+])(?P<secret>(?=[A-Za-z0-9/+]*[A-Z])(?=[A-Za-z0-9/+]*\d)[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
_AWS_SECRET_LABEL = (
    r"(?i:aws_?secret_?(?:access_?)?key|secret_?access_?key|aws[ _-]secret(?:[ _-]access)?[ _-]key)"
)

SECRET_PATTERNS: tuple[tuple[str, str], ...] = (
    ("OpenAI-style key", r"\bsk-(?=[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]{20,}"),
    ("Slack token", r"\bxox[abposre]-\d+-[A-Za-z0-9-]{8,}"),
    ("Slack app token", r"\bxapp-\d-[A-Za-z0-9]+-\d+-[A-Za-z0-9]{8,}"),
    ("Telegram bot token", r"\b\d{8,10}:[A-Za-z0-9_-]{35}\b"),
    ("Discord bot token", r"\b[MNO][A-Za-z\d_-]{23,27}\.[A-Za-z\d_-]{6}\.[A-Za-z\d_-]{27,40}\b"),
    ("GitHub token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})"),
    # the 40-character secret key is only taken as one next to its label or after its key id (alone it is
    # too like other ids); it comes before the key id so that redacting keeps finding it
    ("AWS secret access key", _AWS_SECRET_LABEL + r"[\"']?\s*[:=]\s*[\"']?" + _BASE64_40),
    ("AWS secret access key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b[^\n]{0,80}?" + _BASE64_40),
    ("AWS access key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("Google API key", r"\bAIza[0-9A-Za-z_-]{35}"),
    ("Stripe key", r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"),
    ("JSON web token", r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    ("private key", r"-----BEGIN [A-Z ]*PRIVATE KEY-----\s*[A-Za-z0-9+/=\s]{40,}"),
    # scheme://user:password@host (postgres, mysql, mongodb+srv, redis://:password@, amqp, ...): the
    # password, unless it is an obvious placeholder (***, <password>, ${VAR}, {password}, "password", as in
    # documentation and in the bot's own examples of a connection string)
    (
        "password in a URL",
        r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:"
        r"(?!(?:\*+|x+|<[^>\s]*>|\$\{[^}\s]*\}|\{[^}\s]*\}|(?i:(?:your|my)?[_-]?password|passwd|changeme))@)"
        r"(?P<secret>[^\s/]+)@[^\s/@]+",
    ),
)
_COMPILED_SECRETS = tuple((name, re.compile(pattern)) for name, pattern in SECRET_PATTERNS)
# every pattern above needs one of these (its fixed prefix, or the shape no other text has), so most lines
# (a turn log, a library's request line) are cleared by one scan instead of one per pattern
_MAYBE_SECRET = re.compile(
    r"sk-|xox[abposre]-|xapp-|\d{8}:|\.[A-Za-z\d_-]{6}\.|gh[pousr]_|github_pat_|(?i:aws|secret_?access)|"
    r"AKIA|ASIA|AIza|k_live_|k_test_|eyJ|-----BEGIN|://[^\s/]*@"
)
# the same, bounded: every match of a secret pattern holds one of these, and none is longer than
# NEEDLE_SPAN, so a reply streamed in deltas can be watched for them reading each delta once
SECRET_NEEDLES = re.compile(
    r"sk-|xox[abposre]-|xapp-|\d{8}:|\.[A-Za-z\d_-]{6}\.|gh[pousr]_|github_pat_|(?i:aws|secret_?access)|"
    r"AKIA|ASIA|AIza|k_live_|k_test_|eyJ|-----BEGIN|://"
)
NEEDLE_SPAN = 16
MIN_SECRET_LENGTH = 8
SECRET_OVERLAP = 200  # longer than the shortest text any secret pattern needs to match


def find_secret(text: str, known: Iterable[str] = ()) -> str | None:
    """What kind of credential ``text`` contains (a known configured secret, or a token's shape), or None.
    The answer never includes the secret itself."""
    for secret in known:
        if len(secret) >= MIN_SECRET_LENGTH and secret in text:
            return "configured secret"
    if not _MAYBE_SECRET.search(text):
        return None
    for name, pattern in _COMPILED_SECRETS:
        if pattern.search(text):
            return name
    return None


def redact_secrets(text: str, known: Iterable[str] = (), placeholder: str = "[redacted]") -> str:
    """``text`` with every configured secret and every token-shaped string replaced by ``placeholder``:
    what a log line or a stored message may keep of a message that had a credential in it. Where a
    pattern marks the secret part (a password in a URL, a key after its label) only that part goes, so
    ``postgres://app:[redacted]@db.internal/app`` still says which database was meant."""
    for secret in sorted((s for s in known if len(s) >= MIN_SECRET_LENGTH), key=len, reverse=True):
        text = text.replace(secret, placeholder)
    if _MAYBE_SECRET.search(text):
        for _, pattern in _COMPILED_SECRETS:
            text = pattern.sub(lambda match: _redact_match(match, placeholder), text)
    return text


def _redact_match(match: re.Match[str], placeholder: str) -> str:
    if "secret" not in match.re.groupindex:
        return placeholder
    whole = match.group(0)
    start, end = match.start("secret") - match.start(), match.end("secret") - match.start()
    return whole[:start] + placeholder + whole[end:]
