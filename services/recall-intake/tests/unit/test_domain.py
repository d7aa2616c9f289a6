"""The recall lifecycle and the request fingerprint, free of I/O."""

from __future__ import annotations

import itertools

import pytest

from recall_intake.domain import Action, IllegalTransition, fingerprint, transition

STATUSES = ("draft", "published", "closed")
ACTIONS: tuple[Action, ...] = ("publish", "amend", "close", "edit")

ALLOWED = {
    ("draft", "publish"): "published",
    ("draft", "edit"): "draft",
    ("published", "amend"): "published",
    ("published", "close"): "closed",
}


@pytest.mark.parametrize(("status", "action"), list(itertools.product(STATUSES, ACTIONS)))
def test_transition_table_is_exactly_the_lifecycle(status: str, action: Action) -> None:
    if (status, action) in ALLOWED:
        assert transition(status, action) == ALLOWED[(status, action)]
    else:
        with pytest.raises(IllegalTransition) as info:
            transition(status, action)
        assert info.value.status == status and info.value.action == action
        assert str(info.value) == f"cannot {action} a recall that is {status}"


def test_closed_is_terminal() -> None:
    for action in ACTIONS:
        with pytest.raises(IllegalTransition):
            transition("closed", action)


def test_unknown_status_is_illegal_not_a_crash() -> None:
    with pytest.raises(IllegalTransition):
        transition("archived", "publish")


def test_fingerprint_is_stable_and_ignores_key_order() -> None:
    a = {"content": {"title": "T", "severity": "high"}, "rules": [{"product_ids": ["p1", "p2"]}]}
    b = {"rules": [{"product_ids": ["p1", "p2"]}], "content": {"severity": "high", "title": "T"}}
    assert fingerprint(a) == fingerprint(b) == fingerprint(dict(a))
    assert len(fingerprint(a)) == 64 and int(fingerprint(a), 16) >= 0
    # A known value: the hash is stable across processes and releases (it is stored with every
    # recall).
    assert fingerprint({"b": 1, "a": [1, 2]}) == fingerprint({"a": [1, 2], "b": 1})
    assert fingerprint({}) == "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


def test_fingerprint_tells_different_bodies_apart() -> None:
    base = {"content": {"title": "T"}, "rules": [{"product_ids": ["p1", "p2"]}]}
    assert fingerprint(base) != fingerprint(
        {"content": {"title": "T2"}, "rules": [{"product_ids": ["p1", "p2"]}]}
    )
    # list order is meaningful (rules are positional), unlike key order
    assert fingerprint(base) != fingerprint(
        {"content": {"title": "T"}, "rules": [{"product_ids": ["p2", "p1"]}]}
    )
    assert fingerprint({"a": 1}) != fingerprint({"a": "1"})


@pytest.mark.parametrize(
    ("agency", "classification", "hazard", "severity"),
    [
        ("FDA", "Class I", "", "critical"),
        ("FDA", "class  ii", "", "medium"),
        ("FDA", "Class III", "", "low"),
        ("EU_SAFETY_GATE", "Serious", "", "critical"),
        ("CPSC", "", "posing tip-over and entrapment hazards that can result in death", "high"),
        ("CPSC", "", "The fuel supply line can leak gas, posing a fire hazard.", "high"),
        ("CPSC", "", "The paint contains a stain.", "medium"),
    ],
)
def test_regulator_classes_map_to_one_severity_scale(
    agency: str, classification: str, hazard: str, severity: str
) -> None:
    from recall_intake.domain import severity_for

    assert severity_for(agency, classification, hazard) == severity
