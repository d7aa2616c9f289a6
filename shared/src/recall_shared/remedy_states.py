"""What a remedy case's state means once the case has moved on: one fact for refund-logistics, which
moves cases (``domain.TRANSITIONS``) and reports on them, and customer-api, which shows them.

States are those of :data:`recall_shared.events.CaseState` (remedy.case_transitioned.v1).
"""

from __future__ import annotations

from recall_shared.events import CaseState

COMPLETED_CASE_STATES: frozenset[CaseState] = frozenset(
    {"refunded", "replacement_shipped", "repaired", "closed"}
)
"""The remedy was delivered (money back, a replacement, a repair) and the unit counts as corrected;
``closed`` follows only from these."""

ENDED_CASE_STATES: frozenset[CaseState] = COMPLETED_CASE_STATES | {"rejected"}
"""No further step will come: the remedy was delivered, or the case was rejected."""
