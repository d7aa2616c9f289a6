"""Turning the rules a seller or operator wrote into the published scope.

- GTINs in any common spelling become GTIN-14; a dropped check digit is repaired with a warning, a wrong
  one is refused naming the field.
- ``parent_product_ids`` are expanded into the variants the catalog knows (catalog.listings.v1).
- A seller may only name products it sells, by product id, GTIN or model number, and its recall covers
  only the units it sold (``seller_ids`` is set to the seller); operators may name anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from recall_intake.auth import Principal
from recall_intake.models import Listing
from recall_shared import events as ev
from recall_shared.identifiers import model_key, normalise_gtin


@dataclass
class ScopeProblems(Exception):
    problems: list[str]
    error: str = "invalid_scope"

    def __str__(self) -> str:
        return "; ".join(self.problems)


@dataclass
class PreparedScope:
    rules: list[ev.ScopeRule]
    warnings: list[str] = field(default_factory=list)


async def prepare_rules(
    session: AsyncSession, principal: Principal, rules: list[dict]
) -> PreparedScope:
    """``rules`` are the validated request rules (as dicts, GTINs still as written)."""
    problems: list[str] = []
    warnings: list[str] = []
    out: list[ev.ScopeRule] = []
    not_yours: list[str] = []
    for i, raw in enumerate(rules):
        rule = dict(raw)
        gtins = []
        for j, g in enumerate(rule.get("gtins") or []):
            result = normalise_gtin(g)
            if result.gtin14 is None:
                problems.append(f"rules[{i}].gtins[{j}]: {result.message}")
            else:
                if result.status == "check_digit_added":
                    warnings.append(f"rules[{i}].gtins[{j}]: {result.message}")
                gtins.append(result.gtin14)
        rule["gtins"] = sorted(set(gtins))
        product_ids = list(rule.get("product_ids") or [])
        for j, parent in enumerate(rule.get("parent_product_ids") or []):
            variants = list(
                (
                    await session.execute(
                        select(Listing.product_id).where(Listing.parent_product_id == parent)
                    )
                ).scalars()
            )
            if not variants and await session.get(Listing, parent) is None:
                problems.append(
                    f"rules[{i}].parent_product_ids[{j}]: no product {parent!r} or variants of it are known"
                )
            product_ids += [parent, *variants]
        rule["product_ids"] = sorted(set(product_ids))
        if not principal.is_operator:
            seller = principal.seller_id
            given = set(rule.get("seller_ids") or [])
            if given - {seller}:
                problems.append(
                    f"rules[{i}].seller_ids: a seller's recall covers only its own units ({seller!r})"
                )
            rule["seller_ids"] = [seller]
            not_yours += await _not_sold_by(session, seller, i, rule)  # type: ignore[arg-type]
        out.append(rule)  # type: ignore[arg-type]
    if problems:
        raise ScopeProblems(problems)
    if not_yours:
        raise ScopeProblems(not_yours, error="not_your_product")
    return PreparedScope([ev.ScopeRule.model_validate(r) for r in out], warnings)


async def _not_sold_by(session: AsyncSession, seller: str, i: int, rule: dict) -> list[str]:
    problems = []
    for j, pid in enumerate(rule["product_ids"]):
        listing = await session.get(Listing, pid)
        if listing is None or seller not in listing.seller_ids:
            problems.append(
                f"rules[{i}].product_ids[{j}]: product {pid!r} is not sold by seller {seller!r}"
            )
    for j, gtin in enumerate(rule["gtins"]):
        if not await _sells(session, seller, Listing.gtins.any(gtin)):
            problems.append(
                f"rules[{i}].gtins[{j}]: no product with GTIN {gtin} is sold by seller {seller!r}"
            )
    for j, model in enumerate(rule.get("model_numbers") or []):
        key = model_key(model)
        if key is None or not await _sells(session, seller, Listing.model_keys.any(key)):
            problems.append(
                f"rules[{i}].model_numbers[{j}]: no product with model {model!r} is sold by seller {seller!r}"
            )
    return problems


async def _sells(session: AsyncSession, seller: str, condition) -> bool:  # type: ignore[no-untyped-def]
    count = await session.scalar(
        select(func.count()).select_from(Listing).where(condition, Listing.seller_ids.any(seller))
    )
    return bool(count)
