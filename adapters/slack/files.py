"""Where Slack files are mapped: the ``files`` of a message or ``app_mention`` event as core attachments.

A file's bytes are behind ``url_private_download`` (or ``url_private``), fetched with the bot token in an
``Authorization: Bearer`` header; that needs the ``files:read`` scope
(https://api.slack.com/types/file#authentication). Without it (or without the header) Slack answers with
its sign-in page, an HTML 200, which is recognised here rather than handed on as the file. A file shared
with only partial info (``file_access: check_file_info``, Slack Connect and busy channels) is completed
with ``files.info`` first. The token is sent only to Slack's own hosts (``*.slack.com``) or the host of
``SLACK_API_URL``, never to a URL an event names elsewhere.

Audio clips recorded in Slack (``subtype: slack_audio``) are voice notes; videos are not read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from core.attachments import Attachment, AttachmentError, AttachmentKind

Json = Mapping[str, Any]
CHUNK = 64 * 1024
SCOPE = "Slack sent its sign-in page instead of the file: the app needs the files:read scope"


def kind_of(file: Json) -> AttachmentKind:
    """What a Slack file is, by its subtype and MIME type."""
    mime = str(file.get("mimetype") or "").lower()
    if file.get("subtype") == "slack_audio":
        return AttachmentKind.VOICE
    if mime.startswith("image/"):
        return AttachmentKind.IMAGE
    if mime.startswith("audio/"):
        return AttachmentKind.AUDIO
    if mime.startswith("video/") or file.get("mode") in ("tombstone", "hidden_by_limit", "external"):
        return AttachmentKind.OTHER
    return AttachmentKind.DOCUMENT


def files_of(event: Json) -> tuple[Json, ...]:
    files = event.get("files")
    return tuple(f for f in files if isinstance(f, Mapping)) if isinstance(files, list) else ()


class SlackFiles:
    """Turns Slack files into attachments that download through the Web API client's token."""

    def __init__(self, client: AsyncWebClient, token: str, api_url: str) -> None:
        self.client = client
        self._token = token
        self._api_host = urlsplit(api_url).hostname or ""

    def trusted(self, url: str) -> bool:
        """Whether ``url`` may receive the bot token: Slack's hosts, or the configured API's host."""
        host = urlsplit(url).hostname or ""
        return host == self._api_host or host == "slack.com" or host.endswith(".slack.com")

    async def attachments(self, event: Json) -> tuple[Attachment, ...]:
        """The event's files; one shared with partial info is described by ``files.info`` first (a quick
        Web API call; the download itself waits until the engine reads the file)."""
        found = []
        for file in files_of(event):
            if file.get("file_access") == "check_file_info" or not file.get("mimetype"):
                try:
                    file = await self._info(str(file.get("id", "")))
                except AttachmentError as exc:
                    found.append(
                        Attachment("file", "", AttachmentKind.DOCUMENT, platform="slack", error=exc.reason)
                    )
                    continue
            found.append(self.attachment(file))
        return tuple(found)

    def attachment(self, file: Json) -> Attachment:
        duration_ms = file.get("duration_ms")
        size = file.get("size")

        async def fetch(limit: int) -> bytes:
            return await self.download(file, limit)

        return Attachment(
            name=str(file.get("name") or file.get("title") or "file"),
            mime=str(file.get("mimetype") or ""),
            kind=kind_of(file),
            size=int(size) if isinstance(size, int) else None,
            fetch=fetch,
            duration=duration_ms / 1000 if isinstance(duration_ms, int | float) else None,
            platform="slack",
            ref=dict(file),
        )

    async def download(self, file: Json, limit: int) -> bytes:
        """The file's bytes (at most ``limit``), or an :class:`AttachmentError` saying why not."""
        url = file.get("url_private_download") or file.get("url_private")
        if not url:
            raise AttachmentError("Slack did not give the bot a link to this file")
        if not self.trusted(str(url)):
            raise AttachmentError("the file is not hosted by Slack")
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(str(url), headers=headers) as response,
            ):
                if response.status != 200:
                    raise AttachmentError(f"Slack refused the download (HTTP {response.status})")
                if response.content_type == "text/html" and "html" not in str(file.get("mimetype", "")):
                    raise AttachmentError(SCOPE)
                data = bytearray()
                async for chunk in response.content.iter_chunked(CHUNK):
                    data += chunk
                    if len(data) > limit:
                        raise AttachmentError(f"it is more than {limit // (1024 * 1024)} MB")
                return bytes(data)
        except aiohttp.ClientError:
            raise AttachmentError("the download failed") from None

    async def _info(self, file_id: str) -> Json:
        try:
            response = await self.client.files_info(file=file_id)
        except SlackApiError as exc:
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            error = str(data.get("error") or f"HTTP {exc.response.status_code}")
            hint = " (the app needs the files:read scope)" if error == "missing_scope" else ""
            raise AttachmentError(f"Slack would not describe the file: {error}{hint}") from None
        except (aiohttp.ClientError, TimeoutError):
            raise AttachmentError("Slack could not be reached to describe the file") from None
        found = response.get("file")
        if not isinstance(found, Mapping):
            raise AttachmentError("Slack did not describe the file")
        return found
