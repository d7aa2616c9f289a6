"""recall_shared.api_keys without a database: who may see what, and the seller_keys table a service
gets."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import DateTime, Table, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase

from recall_shared import events as ev
from recall_shared.api_keys import Principal, SellerKeyColumns, key_handlers
from recall_shared.db import new_metadata


@dataclass
class _Recall:
    seller_id: str | None


def test_operators_see_everything_and_sellers_only_their_own() -> None:
    op = Principal(role="operator", seller_id=None, key_id="k-op")
    a = Principal(role="seller", seller_id="seller-a", key_id="k-a")
    assert op.is_operator and not a.is_operator
    assert op.may_see("seller-a") and op.may_see(None)
    assert a.may_see("seller-a") and not a.may_see("seller-b") and not a.may_see(None)
    assert (
        a.owns(_Recall("seller-a"))
        and not a.owns(_Recall("seller-b"))
        and not a.owns(_Recall(None))
    )
    assert op.owns(_Recall("seller-b"))
    # nobody owns what does not exist: the caller answers 404
    assert not op.owns(None) and not a.owns(None)
    # a seller principal without a seller id sees nothing of any seller
    assert not Principal(role="seller", seller_id=None, key_id="k").may_see(None)


def test_the_mixin_gives_each_service_the_same_seller_keys_table() -> None:
    class Base(DeclarativeBase):
        metadata = new_metadata()

    class SellerKey(SellerKeyColumns, Base):
        pass

    table = SellerKey.__table__
    assert isinstance(table, Table)
    assert table.name == "seller_keys"
    assert [(c.name, str(c.type), c.nullable, c.primary_key) for c in table.columns] == [
        ("key_id", "VARCHAR(64)", False, True),
        ("key_hash", "VARCHAR(128)", False, False),
        ("role", "VARCHAR(20)", False, False),
        ("seller_id", "VARCHAR(100)", True, False),
        ("issued_at", "DATETIME", False, False),
        ("revoked_at", "DATETIME", True, False),
    ]
    assert all(
        isinstance(col.type, DateTime) and col.type.timezone
        for col in (table.c.issued_at, table.c.revoked_at)
    )
    assert any(
        isinstance(c, UniqueConstraint) and [col.name for col in c.columns] == ["key_hash"]
        for c in table.constraints
    )
    assert set(key_handlers(SellerKey)) == {ev.ApiKeyIssued, ev.ApiKeyRevoked}
