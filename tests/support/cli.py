"""Running the installed ``chatbot`` command as a user would, with its own environment and folder."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import IO

CHATBOT = str(Path(sys.executable).with_name("chatbot"))


async def run_chatbot(args: list[str], stdin: bytes, cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
    """``chatbot ARGS`` in ``cwd`` with ``stdin`` piped in; returns exit code, stdout and stderr."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CHATBOT_"))}
    full_env.update({"CHATBOT_TIKTOKEN_DOWNLOAD": "0", **env})
    process = await asyncio.create_subprocess_exec(
        CHATBOT,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env=full_env,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def start_chatbot(
    args: list[str], cwd: Path, env: dict[str, str], *, pipes: bool = False, stderr: IO[bytes] | None = None
) -> asyncio.subprocess.Process:
    """``chatbot ARGS`` started in the background (a bot to kill with SIGKILL, as a crash would);
    with ``pipes``, its stdin and stdout are pipes to talk to it. ``stderr``: a file for its log instead of
    a pipe (a busy process nobody reads would block once the pipe's buffer is full)."""
    full_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "CHATBOT_", "TELEGRAM_", "SLACK_"))
    }
    full_env.update({"CHATBOT_TIKTOKEN_DOWNLOAD": "0", **env})
    return await asyncio.create_subprocess_exec(
        CHATBOT,
        *args,
        stdin=asyncio.subprocess.PIPE if pipes else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE if pipes else asyncio.subprocess.DEVNULL,
        stderr=stderr if stderr is not None else asyncio.subprocess.PIPE,
        cwd=cwd,
        env=full_env,
    )
