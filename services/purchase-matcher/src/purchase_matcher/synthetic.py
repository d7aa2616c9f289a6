"""A realistic synthetic marketplace, deterministic by seed: catalog, customers, orders.

Used by the demo, tests and benchmarks. It has what real order history has: products with variants
and several GTINs, model numbers written in different ways, lots and serials known for some lines
only, multi-unit lines, repeat purchases, gifts, business accounts with an admin, cancellations and
(partial) returns. The same seed always gives the same data, so a benchmark or a failing test can be
replayed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from recall_shared import events as ev
from recall_shared.identifiers import check_digit

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
BRANDS = ("ACME", "Zeta", "Nordlicht", "Kiwi Kids", "Polar", "Hearth & Co")
KINDS = (
    "Kettle",
    "Toaster",
    "Desk Lamp",
    "Baby Monitor",
    "Power Bank",
    "Space Heater",
    "Stroller",
    "Blender",
)
COLOURS = ("white", "black", "red", "blue")


def gtin14(seed_digits: int) -> str:
    body = f"{seed_digits:013d}"[-13:]
    return body + str(check_digit(body))


@dataclass(frozen=True)
class Product:
    product_id: str
    parent_id: str
    title: str
    brand: str
    gtins: tuple[str, ...]
    model_number: str
    seller_ids: tuple[str, ...]
    price: Decimal
    lot_known_share: float  # share of shipped lines whose lot the marketplace learns


class Marketplace:
    def __init__(
        self, seed: int = 1, *, products: int = 200, customers: int = 10_000, sellers: int = 20
    ) -> None:
        self.seed = seed
        rnd = random.Random(seed)
        self.sellers = [f"seller-{i:03d}" for i in range(sellers)]
        self.customers = [f"cust-{i:07d}" for i in range(customers)]
        self.products: list[Product] = []
        n = 0
        while len(self.products) < products:
            brand, kind = rnd.choice(BRANDS), rnd.choice(KINDS)
            parent = f"prod-{n:05d}"
            model = f"{kind[:2].upper()}-{rnd.randint(100, 999)}"
            sellers_of = tuple(sorted(rnd.sample(self.sellers, k=rnd.randint(1, 3))))
            price = Decimal(rnd.randint(999, 19999)) / 100
            for colour in rnd.sample(COLOURS, k=rnd.randint(1, 3)):
                self.products.append(
                    Product(
                        product_id=f"{parent}-{colour}",
                        parent_id=parent,
                        title=f"{brand} {kind} {model} ({colour})",
                        brand=brand,
                        gtins=tuple(
                            gtin14(4006381000000 + n * 10 + k) for k in range(rnd.randint(1, 2))
                        ),
                        model_number=model,
                        seller_ids=sellers_of,
                        price=price,
                        lot_known_share=rnd.choice((0.0, 0.3, 0.8)),
                    )
                )
                n += 1
            n += 1
        self.admins = {
            c: self.customers[(i * 7) % len(self.customers)]
            for i, c in enumerate(self.customers)
            if i % 50 == 0
        }

    def listings(self) -> Iterator[ev.ListingUpdated]:
        for p in self.products:
            yield ev.ListingUpdated(
                product_id=p.product_id,
                title=p.title,
                brand=p.brand,
                gtins=list(p.gtins),
                model_numbers=[p.model_number],
                parent_product_id=p.parent_id,
                seller_ids=list(p.seller_ids),
            )

    def customer_events(self) -> Iterator[ev.CustomerUpdated]:
        rnd = random.Random(self.seed + 1)
        for c in self.customers:
            yield ev.CustomerUpdated(
                customer_id=c,
                name=f"Customer {c[-7:]}",
                email=f"{c}@example.test",
                safety_email=f"safety-{c}@example.test" if rnd.random() < 0.05 else None,
                locale="de" if rnd.random() < 0.3 else "en",
                marketing_opt_in=rnd.random() < 0.4,
            )

    def orders(self, count: int, *, start: datetime = EPOCH, days: int = 700) -> Iterator[ev.Event]:
        """``count`` orders in time order, each followed by its shipment, cancellation or return
        events."""
        rnd = random.Random(self.seed + 2)
        step = timedelta(days=days) / max(count, 1)
        popular = self.products[: max(len(self.products) // 10, 1)]
        for i in range(count):
            placed = start + step * i
            customer = rnd.choice(self.customers)
            lines = []
            for j in range(1 if rnd.random() < 0.7 else rnd.randint(2, 4)):
                p = rnd.choice(popular) if rnd.random() < 0.5 else rnd.choice(self.products)
                known = rnd.random() < p.lot_known_share
                lines.append(
                    ev.OrderLine(
                        line_id=f"line-{i:08d}-{j}",
                        product_id=p.product_id,
                        title=p.title,
                        gtin=rnd.choice(p.gtins),
                        model_number=self._spelling(rnd, p.model_number),
                        seller_id=rnd.choice(p.seller_ids),
                        quantity=1 if rnd.random() < 0.85 else rnd.randint(2, 5),
                        unit_price=p.price,
                        currency="EUR",
                        lot=f"{rnd.randint(1, 12000):05d}" if known else None,
                        serial=f"SN{rnd.randint(100000, 999999)}"
                        if known and rnd.random() < 0.5
                        else None,
                        manufactured_on=(placed - timedelta(days=rnd.randint(20, 300))).date()
                        if known
                        else None,
                        expires_on=None,
                    )
                )
            order_id = f"order-{i:08d}"
            yield ev.OrderPlaced(
                order_id=order_id,
                customer_id=customer,
                placed_at=placed,
                lines=lines,
                is_gift=rnd.random() < 0.05,
                business_account_admin_id=self.admins.get(customer),
            )
            roll = rnd.random()
            if roll < 0.03:
                yield ev.OrderCancelled(
                    order_id=order_id,
                    customer_id=customer,
                    cancelled_at=placed + timedelta(hours=2),
                )
            elif roll < 0.08:
                line = rnd.choice(lines)
                yield ev.OrderLineReturned(
                    order_id=order_id,
                    customer_id=customer,
                    line_id=line.line_id,
                    quantity=rnd.randint(1, line.quantity),
                    returned_at=placed + timedelta(days=rnd.randint(3, 30)),
                )

    @staticmethod
    def _spelling(rnd: random.Random, model: str) -> str:
        """Model numbers as real order data spells them: 'KE-123', 'ke123', 'KE 123'."""
        return rnd.choice((model, model.lower().replace("-", ""), model.replace("-", " ")))
