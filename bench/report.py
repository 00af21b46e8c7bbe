"""Small helpers every benchmark shares: percentiles, Markdown tables, and a section of the report."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

Row = tuple[str, ...]


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0 < q <= 1): with 10 values, p95 is the largest."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def ms(seconds: float) -> str:
    """Seconds shown as milliseconds, one decimal."""
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.1f} ms"


def table(header: Row, rows: Sequence[Row]) -> str:
    """A Markdown table with aligned columns."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "| " + " | ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += ["| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    return "\n".join(lines)


@dataclass
class Section:
    """One benchmark's part of the report: a title, a table, and notes under it (targets, caveats)."""

    title: str
    header: Row
    rows: list[Row]
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        text = f"## {self.title}\n\n{table(self.header, self.rows)}\n"
        if self.notes:
            text += "\n" + "\n".join(f"- {note}" for note in self.notes) + "\n"
        return text
