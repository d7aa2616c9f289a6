"""Turning an :class:`ImportedRecall` into a draft recall, once.

- Every regulator record is remembered in ``regulator_records`` by (agency, reference): the same
  record imported again, or re-published by the regulator with a changed body, is *skipped*
  (``times_seen`` and ``last_seen_at`` updated) and never makes a second recall.
- The same event published by two agencies (the same GTIN, or the same brand and model, within
  ``LINK_WINDOW_DAYS``) is *linked*: the second agency's reference is added to the first draft, its
  rules join the draft's scope, and its record points at the same recall.
- Otherwise a draft is *created* for an operator to review: no seller, source "import", the
  provenance of every extracted value in ``Recall.provenance``, and the rules prepared as the API
  prepares an operator's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal, TypedDict

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from recall_intake.auth import Principal
from recall_intake.importers.base import ImportedRecall
from recall_intake.models import Recall, RegulatorRecord
from recall_intake.scope import ScopeProblems, prepare_rules
from recall_intake.screening import screen_draft
from recall_shared import events as ev

LINK_WINDOW_DAYS = 120
OPERATOR = Principal(role="operator", seller_id=None, key_id="regulator-import")

Status = Literal["created", "skipped", "linked", "failed"]


@dataclass
class ImportOutcome:
    status: Status
    recall_id: str | None = None
    reason: str = ""
    agency: str = ""
    reference: str = ""
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "recall_id": self.recall_id,
            "reason": self.reason,
            "agency": self.agency,
            "reference": self.reference,
            "warnings": self.warnings,
        }


async def import_record(session: AsyncSession, imported: ImportedRecall) -> ImportOutcome:
    """Create, skip or link one imported record; commits. Safe to run concurrently for the same
    record."""
    try:
        return await _import(session, imported)
    except IntegrityError:
        # A concurrent import of the same record won the race for its (agency, reference) row.
        await session.rollback()
        return await _import(session, imported)


class _Source(TypedDict):
    agency: str
    reference: str


async def _import(session: AsyncSession, imported: ImportedRecall) -> ImportOutcome:
    base = _Source(agency=imported.agency, reference=imported.reference)
    now = datetime.now(UTC)
    seen = await session.get(
        RegulatorRecord, (imported.agency, imported.reference), with_for_update=True
    )
    if seen is not None:
        changed = seen.content_hash != imported.content_hash
        seen.times_seen += 1
        seen.last_seen_at = now
        seen.content_hash = imported.content_hash
        await session.commit()
        reason = "already imported" + (
            " (the regulator re-published it with a changed body; review the draft)"
            if changed
            else ""
        )
        return ImportOutcome("skipped", seen.recall_id, reason, **base)

    rules, warnings = await _prepared_rules(session, imported)
    warnings = imported.warnings + warnings
    provenance = imported.provenance()
    provenance["warnings"] = warnings
    provenance["imported_at"] = now.isoformat()

    target = await _same_event(session, imported)
    if target is not None:
        reason = f"same event as {_agencies(target)} record(s) already imported"
        if target.status == "draft":
            content = dict(target.content)
            refs = list(content.get("regulator_references") or [])
            refs += [r.model_dump(mode="json") for r in imported.references()]
            content["regulator_references"] = refs
            target.content = content
            merged = list(target.rules or [])
            merged += [r for r in rules if r not in merged]
            target.rules = merged
            tprov = dict(target.provenance or {})
            tprov["match_keys"] = sorted(
                set(tprov.get("match_keys") or []) | set(provenance["match_keys"])
            )
            tprov["linked_records"] = [*(tprov.get("linked_records") or []), provenance]
            target.provenance = tprov
            target.updated_at = now
            await screen_draft(session, target)
        else:
            reason += (
                f"; the recall is {target.status}, so its content was not changed "
                "(amend it to add the reference)"
            )
        session.add(
            RegulatorRecord(
                agency=imported.agency,
                reference=imported.reference,
                recall_id=target.recall_id,
                content_hash=imported.content_hash,
                times_seen=1,
                first_seen_at=now,
                last_seen_at=now,
            )
        )
        await session.commit()
        return ImportOutcome("linked", target.recall_id, reason, warnings=warnings, **base)

    recall = Recall(
        recall_id=str(uuid.uuid4()),
        seller_id=None,
        status="draft",
        version=1,
        content=imported.content().model_dump(mode="json"),
        rules=rules,
        logistics_enrolled=False,
        source="import",
        provenance=provenance,
        owner_key=OPERATOR.owner_key,
        created_at=now,
        updated_at=now,
    )
    session.add(recall)
    await session.flush()
    await screen_draft(session, recall)
    session.add(
        RegulatorRecord(
            agency=imported.agency,
            reference=imported.reference,
            recall_id=recall.recall_id,
            content_hash=imported.content_hash,
            times_seen=1,
            first_seen_at=now,
            last_seen_at=now,
        )
    )
    await session.commit()
    return ImportOutcome(
        "created",
        recall.recall_id,
        "draft created" + ("" if rules else " without rules"),
        warnings=warnings,
        **base,
    )


async def _prepared_rules(
    session: AsyncSession, imported: ImportedRecall
) -> tuple[list[dict[str, Any]], list[str]]:
    """The rules as the API prepares an operator's (GTINs normalised, variants expanded). A rule the
    preparation refuses is left out with a warning rather than failing the whole record."""
    out: list[dict[str, Any]] = []
    warnings: list[str] = []
    for rule in imported.rules:
        try:
            scope = await prepare_rules(session, OPERATOR, [rule])
        except ScopeProblems as exc:
            warnings.append(f"rule left out: {exc}")
            continue
        warnings += scope.warnings
        out += [r.model_dump(mode="json") for r in scope.rules]
    return out, warnings


async def _same_event(session: AsyncSession, imported: ImportedRecall) -> Recall | None:
    """An imported recall of *another* agency with a shared GTIN or brand+model, published within
    the window."""
    if not imported.match_keys:
        return None
    candidates = (
        await session.execute(
            select(Recall)
            .where(
                Recall.source == "import",
                Recall.provenance["match_keys"].has_any(array(sorted(set(imported.match_keys)))),
            )
            .order_by(Recall.created_at)
            .with_for_update()
        )
    ).scalars()
    for recall in candidates:
        if imported.agency in _agencies(recall):
            # the same agency publishing twice is two recalls (or a re-publication, caught by
            # reference)
            continue
        published = _published(recall)
        if (
            imported.published_on
            and published
            and abs((imported.published_on - published).days) > LINK_WINDOW_DAYS
        ):
            continue
        return recall
    return None


def _agencies(recall: Recall) -> list[str]:
    refs = (recall.content or {}).get("regulator_references") or []
    return sorted({r.get("agency", "") for r in refs if isinstance(r, dict)})


def _published(recall: Recall) -> date | None:
    value = (recall.provenance or {}).get("published_on")
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def content_of(recall: Recall) -> ev.RecallContent:
    return ev.RecallContent.model_validate(recall.content)
