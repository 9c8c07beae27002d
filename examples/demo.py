"""A small order-analytics job with the memory habits of real programs, for `make demo`.

- load_orders: parses CSV text into one dict per order (many small Python objects);
- build_index: a per-customer index of those dicts (lists grown by append);
- monthly_totals: a numpy matrix that exists only for one computation (a temporary spike, and
  the run's peak);
- remember_report: a module-level cache that is never cleared (it looks like a leak).
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import numpy as np

CUSTOMERS = 5_000
ORDERS = 100_000
Order = dict[str, Any]  # order_id, customer, month, amount, note
REPORT_CACHE: dict[str, bytes] = {}  # grows with every report and is never cleared


def make_csv(rows: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    lines = ["order_id,customer,month,amount,note"]
    for order in range(rows):
        customer = rng.randrange(CUSTOMERS)
        lines.append(f"{order},c{customer:05d},{rng.randrange(1, 13)},{rng.random() * 500:.2f},ok")
    return "\n".join(lines)


def load_orders(text: str) -> list[Order]:
    header, *rows = text.split("\n")
    names = header.split(",")
    orders = []
    for row in rows:
        record: Order = dict(zip(names, row.split(","), strict=True))
        record["amount"] = float(record["amount"])
        record["month"] = int(record["month"])
        orders.append(record)
    return orders


def build_index(orders: list[Order]) -> dict[str, list[Order]]:
    by_customer: dict[str, list[Order]] = defaultdict(list)
    for order in orders:
        by_customer[order["customer"]].append(order)
    return by_customer


def monthly_totals(index: dict[str, list[Order]]) -> np.ndarray:
    # A dense (customer x month x day-slot) matrix: ~150 MiB, alive only inside this function.
    spread = np.zeros((len(index), 12, 320), dtype=np.float64)
    for row, orders in enumerate(index.values()):
        for slot, order in enumerate(orders):
            spread[row, int(order["month"]) - 1, slot % 320] += float(order["amount"])
    return spread.sum(axis=2)


def remember_report(name: str, totals: np.ndarray) -> None:
    REPORT_CACHE[name] = totals.tobytes() * 40  # an oversized copy kept "for later"


def main() -> None:
    text = make_csv(ORDERS)
    orders = load_orders(text)
    del text
    index = build_index(orders)
    totals = monthly_totals(index)
    for quarter in range(4):
        remember_report(f"q{quarter + 1}", totals[:, quarter * 3 : quarter * 3 + 3])
    best = int(totals.sum(axis=1).argmax())
    print(f"{len(orders)} orders, {len(index)} customers, best customer row {best}")  # noqa: T201


if __name__ == "__main__":
    main()
