"""Subcommands of ``chatbot``: each module here defines ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``async def run(args, settings) -> int``."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Protocol

from bots.settings import Settings


class Command(Protocol):
    NAME: str
    HELP: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Settings], Awaitable[int]]


def commands() -> dict[str, ModuleType]:
    found = [importlib.import_module(f"{__name__}.{info.name}") for info in pkgutil.iter_modules(__path__)]
    return {module.NAME: module for module in found if hasattr(module, "NAME")}
