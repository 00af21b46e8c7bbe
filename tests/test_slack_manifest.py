"""The Slack app manifest (adapters/slack/manifest.json) is kept in step with the code: every Web API
method the adapter calls has its scope in the manifest, every event it listens to is subscribed with its
scope, and the manifest asks for nothing the code does not use.

The used set is read from the code (every ``<client>.<method>(...)`` call on a name ``AsyncWebClient``
has, and every ``.event("...")`` registration), and each SDK method's Web API name from the installed
slack_sdk's own source (its ``api_call("<name>", ...)``). Scopes per method and event are from Slack's
reference pages (https://docs.slack.dev/reference/methods/<method>, .../reference/events/<event>).
"""

from __future__ import annotations

import ast
import inspect
import json
import re
from pathlib import Path

from slack_sdk.web.async_client import AsyncWebClient

ROOT = Path(__file__).resolve().parents[1]
ADAPTER = ROOT / "adapters" / "slack"
MANIFEST = ADAPTER / "manifest.json"

# Web API method -> the bot scopes that allow it (any one of them); () for none or an app-level token
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "auth.test": (),
    "apps.connections.open": (),  # the app-level token's connections:write, not a bot scope
    "chat.postMessage": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.postEphemeral": (
        "chat:write",
    ),  # the feedback buttons' acknowledgement (adapters/slack/feedback.py)
    "files.info": ("files:read",),  # a file event that names only the file's id (adapters/slack/files.py)
    "chat.startStream": ("chat:write",),
    "chat.appendStream": ("chat:write",),
    "chat.stopStream": ("chat:write",),
    # chat:write is reported to suffice since 2026 (outside assistant threads); assistant:write always does
    "assistant.threads.setStatus": ("assistant:write", "chat:write"),
    "assistant.threads.setSuggestedPrompts": ("assistant:write",),
    "assistant.threads.setTitle": ("assistant:write",),
}
# a bolt event name -> the Events API subscriptions it stands for
EVENT_SUBSCRIPTIONS: dict[str, tuple[str, ...]] = {
    "app_mention": ("app_mention",),
    "message": ("message.channels", "message.groups", "message.im", "message.mpim"),
    "assistant_thread_started": ("assistant_thread_started",),
}
SUBSCRIPTION_SCOPES: dict[str, str] = {
    "app_mention": "app_mentions:read",
    "message.channels": "channels:history",
    "message.groups": "groups:history",
    "message.im": "im:history",
    "message.mpim": "mpim:history",
    "assistant_thread_started": "assistant:write",
}


def manifest() -> dict[str, object]:
    data: dict[str, object] = json.loads(MANIFEST.read_text())
    return data


def bot_scopes() -> set[str]:
    return set(manifest()["oauth_config"]["scopes"]["bot"])  # type: ignore[index]


def bot_events() -> set[str]:
    return set(manifest()["settings"]["event_subscriptions"]["bot_events"])  # type: ignore[index]


def _calls() -> list[ast.Call]:
    found: list[ast.Call] = []
    for path in sorted(ADAPTER.glob("*.py")):
        found += [node for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Call)]
    return found


def api_name(sdk_method: str) -> str:
    """The Web API method an ``AsyncWebClient`` method calls, from the installed SDK's source."""
    source = inspect.getsource(getattr(AsyncWebClient, sdk_method))
    match = re.search(r'api_call\(\s*"([^"]+)"', source)
    assert match, f"no api_call in AsyncWebClient.{sdk_method}"
    return match.group(1)


def methods_used() -> set[str]:
    sdk_methods = {
        node.func.attr
        for node in _calls()
        if isinstance(node.func, ast.Attribute)
        and not node.func.attr.startswith("_")
        and inspect.iscoroutinefunction(getattr(AsyncWebClient, node.func.attr, None))
        and node.func.attr not in {"api_call"}
    }
    return {api_name(name) for name in sdk_methods}


def events_used() -> set[str]:
    return {
        str(node.args[0].value)
        for node in _calls()
        if isinstance(node.func, ast.Attribute)
        and node.func.attr == "event"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }


def test_the_code_is_read_for_what_it_uses() -> None:
    assert {"chat.postMessage", "chat.startStream", "assistant.threads.setStatus"} <= methods_used()
    assert {"app_mention", "message", "assistant_thread_started"} <= events_used()


def test_every_web_api_method_the_code_calls_has_its_scope_in_the_manifest() -> None:
    scopes = bot_scopes()
    for method in sorted(methods_used()):
        assert method in METHOD_SCOPES, f"{method}: add its scopes to METHOD_SCOPES and the manifest"
        needed = METHOD_SCOPES[method]
        assert not needed or set(needed) & scopes, f"{method} needs one of {needed} in the manifest"


def test_every_event_the_code_listens_to_is_subscribed_with_its_scope() -> None:
    events, scopes = bot_events(), bot_scopes()
    for event in sorted(events_used()):
        assert event in EVENT_SUBSCRIPTIONS, f"{event}: add it to EVENT_SUBSCRIPTIONS and the manifest"
        for subscription in EVENT_SUBSCRIPTIONS[event]:
            assert subscription in events, f"the manifest does not subscribe to {subscription}"
            assert SUBSCRIPTION_SCOPES[subscription] in scopes, f"{subscription} needs its scope"


def test_the_manifest_asks_for_nothing_the_code_does_not_use() -> None:
    subscribed = {s for e in events_used() for s in EVENT_SUBSCRIPTIONS.get(e, ())}
    assert bot_events() <= subscribed, f"unused events: {bot_events() - subscribed}"
    needed = {SUBSCRIPTION_SCOPES[s] for s in subscribed} | {
        scope for m in methods_used() for scope in METHOD_SCOPES.get(m, ())
    }
    assert bot_scopes() <= needed, f"unused scopes: {bot_scopes() - needed}"


def test_the_slack_guide_points_to_the_manifest_file() -> None:
    assert "adapters/slack/manifest.json" in (ROOT / "docs" / "slack.md").read_text()


def test_interactivity_is_on_because_the_feedback_buttons_need_block_actions() -> None:
    code = (ROOT / "adapters" / "slack" / "feedback.py").read_text()
    assert ".action(" in code, "the feedback buttons listen to block_actions"
    settings = manifest()["settings"]
    assert isinstance(settings, dict) and settings["interactivity"]["is_enabled"] is True
