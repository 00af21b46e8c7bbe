"""What a turn costs: a price table per model, in USD per million input and output tokens.

The built-in table covers common OpenAI models (list prices; check them against your invoice). The
``CHATBOT_PRICES`` setting extends or overrides it, e.g. ``gpt-4o-mini=0.15/0.60, my-model=1/2``. A model
that is in neither (a local model on your own server) costs 0.

A dated snapshot name is priced as its family: ``gpt-4o-2024-08-06`` uses ``gpt-4o``; the longest known
name wins, so ``gpt-4o-mini-2024-07-18`` uses ``gpt-4o-mini``. A ``provider/`` prefix is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from core.errors import ConfigError

PER_TOKENS = 1_000_000


@dataclass(frozen=True)
class Price:
    """USD per million input (prompt) and output (completion) tokens."""

    input: float
    output: float


BUILTIN_PRICES: Mapping[str, Price] = {
    "gpt-5": Price(1.25, 10.00),
    "gpt-5-mini": Price(0.25, 2.00),
    "gpt-5-nano": Price(0.05, 0.40),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4-turbo": Price(10.00, 30.00),
    "gpt-4": Price(30.00, 60.00),
    "gpt-3.5-turbo": Price(0.50, 1.50),
    "o1": Price(15.00, 60.00),
    "o1-mini": Price(1.10, 4.40),
    "o3": Price(2.00, 8.00),
    "o3-mini": Price(1.10, 4.40),
    "o4-mini": Price(1.10, 4.40),
    "text-embedding-3-small": Price(0.02, 0.0),
    "text-embedding-3-large": Price(0.13, 0.0),
}


def parse_prices(text: str) -> dict[str, Price]:
    """Parse ``name=input/output`` entries separated by commas (or newlines); raise ConfigError if bad."""
    prices: dict[str, Price] = {}
    for raw in text.replace("\n", ",").split(","):
        entry = raw.strip()
        if not entry:
            continue
        name, sep, values = entry.partition("=")
        in_text, slash, out_text = values.partition("/")
        try:
            if not sep or not slash or not name.strip():
                raise ValueError(entry)
            price = Price(float(in_text), float(out_text))
        except ValueError:
            raise ConfigError(
                f"CHATBOT_PRICES: cannot read {entry!r}; write model=input/output in USD per million "
                "tokens, e.g. gpt-4o-mini=0.15/0.60"
            ) from None
        if price.input < 0 or price.output < 0:
            raise ConfigError(f"CHATBOT_PRICES: negative price in {entry!r}")
        prices[name.strip().lower()] = price
    return prices


class PriceTable:
    """Prices per model: the built-in table overlaid with configured entries."""

    def __init__(self, prices: Mapping[str, Price] | None = None) -> None:
        self._prices = {name.lower(): price for name, price in (prices or BUILTIN_PRICES).items()}

    @classmethod
    def from_setting(cls, text: str) -> PriceTable:
        """The built-in table extended and overridden by a ``CHATBOT_PRICES`` value."""
        return cls({**BUILTIN_PRICES, **parse_prices(text)})

    def price(self, model: str) -> Price | None:
        """The price of ``model`` (exact name, else its longest known family), or None if unknown."""
        name = model.strip().lower()
        for candidate in (name, name.rsplit("/", 1)[-1]):
            if candidate in self._prices:
                return self._prices[candidate]
            families = [known for known in self._prices if candidate.startswith(known + "-")]
            if families:
                return self._prices[max(families, key=len)]
        return None

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        """USD for one call; 0 for a model with no known price (a local model)."""
        price = self.price(model)
        if price is None:
            return 0.0
        return (max(0, prompt_tokens) * price.input + max(0, completion_tokens) * price.output) / PER_TOKENS


_DEFAULT_TABLE = PriceTable()


def cost(model: str, prompt_tokens: int, completion_tokens: int, table: PriceTable | None = None) -> float:
    """USD for one call, priced with ``table`` or the built-in table."""
    return (table or _DEFAULT_TABLE).cost(model, prompt_tokens, completion_tokens)
