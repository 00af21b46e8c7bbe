"""``python -m bench``: run the benchmarks, print one table per section, write them to bench/results/.

Sections (``--only`` takes these names, comma-separated or repeated):

- ``core``: a turn's core overhead with an instant model, growth with history, throughput, memory
  (:mod:`bench.core_overhead`), with the naive loop's growth side by side;
- ``latency``: added latency per platform adapter and the terminal (:mod:`bench.platform_latency`);
- ``calls``: platform calls per reply with each platform's pace enforced (:mod:`bench.platform_calls`);
- ``http``: CPU per streamed chunk and engine turns/s through the real HTTP path, the SDK's chunk objects
  against the parsed SSE body (:mod:`bench.http_path`);
- ``knowledge``: ingest throughput and retrieval latency at 10,000 and 100,000 passages
  (:mod:`bench.knowledge_bench`);
- ``workers``: turns/s and reply latency over 1, 2 and 3 Telegram worker processes sharing the work queue
  (:mod:`bench.workers`; needs PostgreSQL, skipped without it).
- ``media``: a turn with one photo against a text turn (:mod:`bench.media_cost`).
- ``storage``: one turn on the PostgreSQL store against the SQLite store (:mod:`bench.store_cost`).

``--quick`` does fewer runs and shorter streams (the core section skips the memory check and uses fewer
turns). A full run of every section writes ``bench/results/latest.md``; a quick or partial run writes
``bench/results/partial.md`` so it never overwrites the full table (``--out`` chooses another file).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import shlex
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench import (
    core_overhead,
    features_cost,
    http_path,
    knowledge_bench,
    media_cost,
    platform_calls,
    platform_latency,
    store_cost,
    workers,
)
from bench.report import Section, table

RESULTS = Path(__file__).parent / "results"


async def core(quick: bool) -> Section:
    header: tuple[str, ...]
    if quick:
        rows = await core_overhead.history_growth(turns=60, rounds=3)
        for concurrency, turns in ((1, 100), (100, 2), (1000, 1)):
            rows.append(await core_overhead.throughput(concurrency, turns))
        header = ("measure", "median", "p95", "CPU per turn")
    else:
        header, rows = await core_overhead.run()
    rows += await features_cost.run(turns=100 if quick else 400, rounds=3 if quick else 5)
    return Section(
        title="Core overhead with an instant in-process model (items 3, 4, 5 and 6)",
        header=header,
        rows=rows,
        notes=[
            "Targets: at least 500 turns/s on 2 cores; 10,000 vs 10 stored messages at most 1.3x at each "
            "window (8k, 32k, 128k; issue 19 target 2); under 300 MB with 10,000 sessions. Every row is "
            "in process (no HTTP); throughput rows use the 8k window. The naive rows run the article's loop "
            "on the same store and model (8k window)."
            + (" Quick mode: fewer turns, no memory check." if quick else ""),
            "Features rows (issue 19, item 3): the same turns with every feature installed and with the core "
            "only, the turn log written in both, 40 deltas a reply; target CPU per turn at most 1.3x.",
        ],
    )


async def latency(quick: bool) -> Section:
    return await platform_latency.run(quick=quick)


async def calls(quick: bool) -> Section:
    return await platform_calls.run(quick=quick)


async def http(quick: bool) -> Section:
    return await http_path.run(quick=quick)


async def knowledge(quick: bool) -> Section:
    header, rows = await knowledge_bench.run(quick=quick)
    return Section(
        title="Knowledge base: ingest throughput and query latency (1,536-dim vectors, instant embedder)",
        header=header,
        rows=rows,
    )


async def workers_section(quick: bool) -> Section:
    return await workers.run(quick=quick)


async def media(quick: bool) -> Section:
    header, rows = await media_cost.run(quick=quick)
    return Section(
        title="Photos: a turn with one 1600x1200 JPEG against a text turn (instant in-process model, 8k)",
        header=header,
        rows=rows,
        notes=[
            "The photo comes from memory; the difference is decoding, downscaling to 1024x768, JPEG "
            "re-encoding and base64 (Pillow), and the bigger request. Image tokens by OpenAI's formula "
            "(765 for 1024x768 at high detail). Medians over rounds that alternate the two arms."
        ],
    )


async def storage(quick: bool) -> Section:
    return Section(
        title="Storage: one turn on PostgreSQL against SQLite (issue 14)",
        header=store_cost.HEADER,
        rows=await store_cost.run(quick),
        notes=[
            "The same engine and instant model on each store, rounds interleaved; PostgreSQL on the loopback "
            "server (TCP), in a scratch database. CPU is this process's only (the server's is not counted)."
        ],
    )


SECTIONS: dict[str, Callable[[bool], Awaitable[Section]]] = {
    "core": core,
    "latency": latency,
    "calls": calls,
    "http": http,
    "knowledge": knowledge,
    "workers": workers_section,
    "media": media,
    "storage": storage,
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and shorter streams")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"run only these sections ({', '.join(SECTIONS)}); comma-separated or repeated",
    )
    parser.add_argument("--out", type=Path, help="where to write the Markdown report")
    args = parser.parse_args(argv)
    names = [name.strip() for value in args.only for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}: choose from {', '.join(SECTIONS)}")
    args.sections = [name for name in SECTIONS if name in names] if names else list(SECTIONS)
    if args.out is None:
        complete = not args.quick and args.sections == list(SECTIONS)
        args.out = RESULTS / ("latest.md" if complete else "partial.md")
    return args


def preamble(argv: list[str]) -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    command = shlex.join(["python", "-m", "bench", *argv])
    return (
        f"# Benchmarks\n\n`{command}` on {time.strftime('%Y-%m-%d %H:%M')}: Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs, load average {load:.2f} at the start. Absolute times drift "
        "on a shared machine; compare figures measured side by side in the same run.\n"
    )


async def run_sections(names: list[str], quick: bool) -> list[Section]:
    sections = []
    for name in names:
        started = time.monotonic()
        section = await SECTIONS[name](quick)
        section.notes.append(f"Measured in {time.monotonic() - started:.0f} s.")
        print(f"\n## {section.title}\n\n{table(section.header, section.rows)}\n", flush=True)
        sections.append(section)
    return sections


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("chatbot.turns").setLevel(logging.WARNING)
    head = preamble(argv)
    print(head)
    sections = asyncio.run(run_sections(args.sections, args.quick))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(head + "".join(f"\n{section.markdown()}" for section in sections))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
