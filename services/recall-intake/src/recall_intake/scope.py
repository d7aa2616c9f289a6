"""Turning the rules a seller or operator wrote into the published scope.

- GTINs in any common spelling become GTIN-14; a dropped check digit is repaired with a warning, a
  wrong one is refused naming the field.
- ``parent_product_ids`` are expanded into the variants the catalog knows (catalog.listings.v1).
- A seller may only name products it sells, by product id, GTIN or model number, and its recall
  covers only the units it sold (``seller_ids`` is set to the seller); operators may name anything.
- A product the catalog has listed for other sellers only is ``not_your_product`` (final); a product
  no listing names at all is ``not_known_yet`` (retry): the catalog's listing event may simply not
  have been read yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from recall_intake.auth import Principal
from recall_intake.models import Listing
from recall_shared import events as ev
from recall_shared.identifiers import model_key, normalise_gtin

# How long a client waits to retry a ``not_known_yet``: catalog.listings.v1 is read in seconds.
RETRY_AFTER_SECONDS = 2


@dataclass
class ScopeProblems(Exception):
    problems: list[str]
    error: str = "invalid_scope"
    retry_after: int | None = None  # seconds; set when the same request may succeed later

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
    out: list[dict] = []
    not_yours: list[str] = []
    unknown: list[str] = []
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
                # Like any product no listing names: its listing may not have been read yet.
                unknown.append(
                    f"rules[{i}].parent_product_ids[{j}]: "
                    f"no product {parent!r} or variants of it are known yet"
                )
            product_ids += [parent, *variants]
        rule["product_ids"] = sorted(set(product_ids))
        if not principal.is_operator:
            seller = principal.seller_id
            assert seller is not None  # a principal that is no operator is a seller with an id
            given = set(rule.get("seller_ids") or [])
            if given - {seller}:
                problems.append(
                    f"rules[{i}].seller_ids: "
                    f"a seller's recall covers only its own units ({seller!r})"
                )
            rule["seller_ids"] = [seller]
            ownership = await _ownership(session, seller, i, rule)
            not_yours += ownership.not_yours
            unknown += ownership.unknown
        out.append(rule)
    if problems:
        raise ScopeProblems(problems)
    if not_yours:
        raise ScopeProblems(not_yours, error="not_your_product")
    if unknown:
        hint = (
            "recall-intake has not read a catalog listing for this yet (catalog.listings.v1); "
            "if the listing was just published, send the same request again in "
            f"{RETRY_AFTER_SECONDS} s"
        )
        raise ScopeProblems(
            [*unknown, hint], error="not_known_yet", retry_after=RETRY_AFTER_SECONDS
        )
    return PreparedScope([ev.ScopeRule.model_validate(r) for r in out], warnings)


@dataclass
class _Ownership:
    not_yours: list[str] = field(default_factory=list)  # listed, but for other sellers only
    unknown: list[str] = field(default_factory=list)  # no listing names it (yet)


async def _ownership(session: AsyncSession, seller: str, i: int, rule: dict) -> _Ownership:
    found = _Ownership()
    for j, pid in enumerate(rule["product_ids"]):
        listing = await session.get(Listing, pid)
        where = f"rules[{i}].product_ids[{j}]"
        if listing is None:
            found.unknown.append(f"{where}: product {pid!r} is not known yet")
        elif seller not in listing.seller_ids:
            found.not_yours.append(f"{where}: product {pid!r} is not sold by seller {seller!r}")
    for j, gtin in enumerate(rule["gtins"]):
        where = f"rules[{i}].gtins[{j}]"
        if await _sells(session, seller, Listing.gtins.any_() == gtin):
            continue
        if await _sells(session, None, Listing.gtins.any_() == gtin):
            found.not_yours.append(
                f"{where}: no product with GTIN {gtin} is sold by seller {seller!r}"
            )
        else:
            found.unknown.append(f"{where}: no product with GTIN {gtin} is known yet")
    for j, model in enumerate(rule.get("model_numbers") or []):
        where = f"rules[{i}].model_numbers[{j}]"
        key = model_key(model)
        if key is not None and await _sells(session, seller, Listing.model_keys.any_() == key):
            continue
        if key is not None and not await _sells(session, None, Listing.model_keys.any_() == key):
            found.unknown.append(f"{where}: no product with model {model!r} is known yet")
        else:
            found.not_yours.append(
                f"{where}: no product with model {model!r} is sold by seller {seller!r}"
            )
    return found


async def _sells(session: AsyncSession, seller: str | None, condition: ColumnElement[bool]) -> bool:
    """Is a listing matching ``condition`` sold by ``seller`` (by anybody, for None)?"""
    query = select(func.count()).select_from(Listing).where(condition)
    if seller is not None:
        query = query.where(Listing.seller_ids.any_() == seller)
    return bool(await session.scalar(query))
