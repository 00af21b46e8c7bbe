"""``python -m bench``: run the benchmarks, print a table, write it to bench/results/latest.md."""

from __future__ import annotations

import asyncio
import logging
import platform
import time
from pathlib import Path

from bench import core_overhead


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "| " + " | ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += ["| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("chatbot.turns").setLevel(logging.WARNING)
    header, rows = asyncio.run(core_overhead.run())
    stamp = time.strftime("%Y-%m-%d %H:%M")
    text = (
        f"Core overhead with an instant in-process model ({stamp}, Python {platform.python_version()}, "
        f"{platform.machine()})\n\n{table(header, rows)}\n"
    )
    print(text)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.md").write_text(text)


if __name__ == "__main__":
    main()
