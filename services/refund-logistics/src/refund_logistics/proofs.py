"""Proofs of destruction: the customer's photo, checked (proof_checks.py), held for an operator's
review when flagged or when the policy asks (domain.proof_needs_review), accepted or rejected with a
reason the customer sees (who may then upload another). The refund follows acceptance, planned in
the accepting transaction and settled after it commits (refund_steps.py): exactly once."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from recall_shared import events as ev
from refund_logistics.case_rows import CaseNotFound, locked_case
from refund_logistics.domain import (
    case_value,
    check_new_proof,
    check_proof_accepted,
    check_reviewable,
    hash_bands,
    hash_distance,
    is_duplicate,
    proof_needs_review,
)
from refund_logistics.models import Case, CaseProof, CaseProofImage, KnownAlert, ProofFingerprint
from refund_logistics.proof_checks import ImageFacts, signed64
from refund_logistics.refund_steps import RefundSteps
from refund_logistics.transitions import CaseTransitions, Faults

UNSIGNED64 = (1 << 64) - 1


@dataclass(frozen=True)
class ReviewItem:
    case: Case
    proof: CaseProof


class Proofs:
    def __init__(
        self,
        transitions: CaseTransitions,
        refunds: RefundSteps,
        fault: Faults,
        *,
        session_factory: async_sessionmaker[AsyncSession] | None = None,
        pay_without_review_up_to: Decimal = Decimal("0"),
    ) -> None:
        self.transitions = transitions
        self.refunds = refunds
        self.fault = fault
        self.session_factory = session_factory
        self.pay_without_review_up_to = pay_without_review_up_to

    def _sf(self) -> async_sessionmaker[AsyncSession]:
        assert self.session_factory is not None, "proofs need a session factory"
        return self.session_factory

    # ------------------------------------------------------------------ the customer's upload

    async def submit(
        self, case_id: str, customer_id: str, image: bytes, facts: ImageFacts
    ) -> tuple[Case, CaseProof]:
        """The customer's photo of the destroyed unit (already decoded and measured). Repeating the
        same photo is a no-op (it only nudges a pending refund); another photo is taken only after
        a rejection. Returns the case and its proof as they are afterwards."""
        digest = hashlib.sha256(image).hexdigest()
        # Fast path, without a lock: a repeated upload (a client's retry, a double tap, 1,000 at
        # once).
        seen = await self._case_and_proof(case_id)
        if seen is None or seen[0].customer_id != customer_id:
            raise CaseNotFound(case_id)
        case, proof = seen
        if proof is not None and proof.sha256 == digest and proof.status != "rejected":
            if case.waiting_for == "payment":
                await self.refunds.settle(case_id)
                return await self._case_with_proof(case_id)
            return case, proof
        if proof is not None:
            check_new_proof(proof.status, proof.rejection_reason, proof.sha256 == digest)
        async with self._sf()() as session, session.begin():
            case = await locked_case(session, case_id)
            existing = await session.get(CaseProof, case_id, populate_existing=True)
            if existing is not None and existing.sha256 == digest and existing.status != "rejected":
                pass  # another upload of this photo won the race
            else:
                if existing is not None:
                    check_new_proof(
                        existing.status, existing.rejection_reason, existing.sha256 == digest
                    )
                check_proof_accepted(case.remedy, case.state, case.waiting_for)
                await self._take(session, case, existing, image, digest, facts)
        await self.refunds.settle(case_id)
        return await self._case_with_proof(case_id)

    async def _take(
        self,
        session: AsyncSession,
        case: Case,
        existing: CaseProof | None,
        image: bytes,
        digest: str,
        facts: ImageFacts,
    ) -> None:
        attempt = existing.attempt + 1 if existing is not None else 1
        flags = await self._duplicate_flags(session, case, facts.phash)
        bands = hash_bands(facts.phash)
        session.add(
            ProofFingerprint(
                case_id=case.case_id,
                customer_id=case.customer_id,
                attempt=attempt,
                sha256=digest,
                phash=signed64(facts.phash),
                band0=bands[0],
                band1=bands[1],
                band2=bands[2],
                band3=bands[3],
            )
        )
        alert = await session.get(KnownAlert, case.alert_id)
        value = case_value([ev.AffectedLine.model_validate(x) for x in alert.lines]) if alert else 0
        review = proof_needs_review(flags, Decimal(value), self.pay_without_review_up_to)
        fields: dict[str, Any] = {
            "sha256": digest,
            "size": len(image),
            "content_type": facts.content_type,
            "received_at": datetime.now(UTC),
            "status": "pending_review" if review else "accepted",
            "attempt": attempt,
            "width": facts.width,
            "height": facts.height,
            "flags": flags,
            "reviewed_by_key_id": None,
            "reviewed_at": None,
            "rejection_reason": None,
        }
        if existing is None:
            session.add(CaseProof(case_id=case.case_id, **fields))
            session.add(CaseProofImage(case_id=case.case_id, image=image))
        else:
            for name, value_ in fields.items():
                setattr(existing, name, value_)
            stored = await session.get(CaseProofImage, case.case_id)
            assert stored is not None
            stored.image = image
        case.reason = None
        if review:
            case.waiting_for = "review"
            await self.transitions.progress(session, case, "proof_under_review", attempt)
            return
        await self.transitions.progress(session, case, "proof_accepted", attempt)
        await self.refunds.plan(session, case)
        await self.fault("after_intent", case.case_id)

    async def _duplicate_flags(
        self, session: AsyncSession, case: Case, phash: int
    ) -> list[dict[str, Any]]:
        """Earlier photos that look the same (any case, any customer; this case's rejected ones
        too): what the operator sees on the review."""
        bands = hash_bands(phash)
        columns = (
            ProofFingerprint.band0,
            ProofFingerprint.band1,
            ProofFingerprint.band2,
            ProofFingerprint.band3,
        )
        rows = (
            await session.execute(
                select(
                    ProofFingerprint.case_id,
                    ProofFingerprint.customer_id,
                    ProofFingerprint.attempt,
                    ProofFingerprint.phash,
                ).where(or_(*(c == b for c, b in zip(columns, bands, strict=True))))
            )
        ).all()
        flags = []
        for other_case, other_customer, attempt, other in rows:
            if not is_duplicate(phash, other & UNSIGNED64):
                continue
            flags.append(
                {
                    "flag": "duplicate_photo",
                    "case_id": other_case,
                    "attempt": attempt,
                    "same_customer": other_customer == case.customer_id,
                    "distance": hash_distance(phash, other & UNSIGNED64),
                }
            )
        return flags

    async def _case_and_proof(self, case_id: str) -> tuple[Case, CaseProof | None] | None:
        async with self._sf()() as session:
            row = (
                await session.execute(
                    select(Case, CaseProof)
                    .outerjoin(CaseProof, CaseProof.case_id == Case.case_id)
                    .where(Case.case_id == case_id)
                )
            ).first()
        return (row[0], row[1]) if row is not None else None

    async def _case_with_proof(self, case_id: str) -> tuple[Case, CaseProof]:
        """The case and its proof, re-read once one was taken (a proof is never removed)."""
        seen = await self._case_and_proof(case_id)
        assert seen is not None and seen[1] is not None, f"case {case_id} lost its proof"
        return seen[0], seen[1]

    # ------------------------------------------------------------------ the operator's review

    async def accept(self, case_id: str, key_id: str) -> None:
        """Accept the proof; the refund follows (a repeated accept only nudges it)."""
        async with self._sf()() as session, session.begin():
            case = await locked_case(session, case_id)
            proof = await session.get(CaseProof, case_id, populate_existing=True)
            if proof is None or proof.status != "accepted":
                check_reviewable(case.waiting_for, proof.status if proof else None)
                assert proof is not None
                proof.status = "accepted"
                proof.reviewed_by_key_id = key_id
                proof.reviewed_at = datetime.now(UTC)
                await self.transitions.progress(session, case, "proof_accepted", proof.attempt)
                await self.refunds.plan(session, case)
                await self.fault("after_intent", case_id)
        await self.refunds.settle(case_id)

    async def reject(self, case_id: str, key_id: str, reason: str) -> None:
        """Reject the proof, with the reason the customer sees; the case waits for another."""
        async with self._sf()() as session, session.begin():
            case = await locked_case(session, case_id)
            proof = await session.get(CaseProof, case_id, populate_existing=True)
            if (
                proof is not None
                and proof.status == "rejected"
                and proof.rejection_reason == reason
            ):
                return  # the same decision again
            check_reviewable(case.waiting_for, proof.status if proof else None)
            assert proof is not None
            proof.status = "rejected"
            proof.rejection_reason = reason
            proof.reviewed_by_key_id = key_id
            proof.reviewed_at = datetime.now(UTC)
            case.waiting_for = "proof"
            case.reason = reason
            await self.transitions.progress(
                session, case, "proof_rejected", proof.attempt, reason=reason
            )

    async def queue(
        self, session: AsyncSession, limit: int, after: tuple[datetime, str] | None
    ) -> list[ReviewItem]:
        """Proofs waiting for review, oldest first (``after``: the last one of the previous
        page)."""
        stmt = (
            select(Case, CaseProof)
            .join(CaseProof, CaseProof.case_id == Case.case_id)
            .where(CaseProof.status == "pending_review", Case.waiting_for == "review")
        )
        if after is not None:
            at, cid = after
            stmt = stmt.where(
                or_(
                    CaseProof.received_at > at,
                    and_(CaseProof.received_at == at, CaseProof.case_id > cid),
                )
            )
        rows = await session.execute(
            stmt.order_by(CaseProof.received_at, CaseProof.case_id).limit(limit)
        )
        return [ReviewItem(case, proof) for case, proof in rows.all()]
