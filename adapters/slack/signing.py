"""Where a Slack HTTP request is checked before bolt sees it: size, signature and timestamp, then body shape.

bolt parses the body before it checks the signature (an unparseable body is a 500 with a traceback) and logs
the whole body of every request whose signature is wrong. So the HTTP endpoint answers these itself:
413 for a body over :data:`MAX_BODY`, 401 for a missing or wrong signature or a timestamp more than five
minutes off, 400 for a signed body bolt could not read. Nothing here ever logs or returns the body.
The signature is Slack's ``v0=`` + HMAC-SHA256(signing secret, ``v0:{timestamp}:{raw body}``), see
https://docs.slack.dev/authentication/verifying-requests-from-slack/.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from urllib.parse import parse_qs

MAX_BODY = 1024 * 1024  # Slack's event payloads are a few KB; 1 MB leaves plenty of room
MAX_CLOCK_SKEW = 300  # seconds; Slack's recommendation, and what bolt checks


def signature_ok(secret: str, body: bytes, timestamp: str | None, signature: str | None, now: float) -> bool:
    """Whether ``signature`` is Slack's for ``body`` at ``timestamp``, and the timestamp is recent."""
    if not timestamp or not signature or not timestamp.isascii() or not timestamp.isdigit():
        return False
    if abs(now - int(timestamp)) > MAX_CLOCK_SKEW:
        return False
    digest = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(f"v0={digest}".encode(), signature.encode("utf-8", "replace"))


def body_readable(body: bytes, content_type: str) -> bool:
    """Whether bolt can parse ``body``: a JSON object, or a form whose ``payload`` (if any) is one.

    Mirrors bolt's own choice: JSON when the content type says so or the body starts with ``{``.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    try:
        if content_type.split(";")[0].strip().lower() == "application/json" or text.startswith("{"):
            return isinstance(json.loads(text), dict)
        payload = parse_qs(text).get("payload")
        return payload is None or isinstance(json.loads(payload[0]), dict)
    except ValueError:  # json.JSONDecodeError is a ValueError
        return False


def refusal(secret: str, body: bytes, headers: Mapping[str, str], now: float) -> tuple[int, str] | None:
    """The status and short reason to answer a request with, or ``None`` when bolt may have it."""
    if len(body) > MAX_BODY:
        return 413, "request body too large"
    timestamp = headers.get("X-Slack-Request-Timestamp")
    if not signature_ok(secret, body, timestamp, headers.get("X-Slack-Signature"), now):
        return 401, "invalid or missing signature"
    if not body_readable(body, headers.get("Content-Type", "")):
        return 400, "unreadable request body"
    return None
