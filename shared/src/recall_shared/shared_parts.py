"""Parts that many events carry alike, validated once per distinct JSON text.

Every alert of a recall's fan-out carries the same recall content (texts, remedies, images: most of
an alert's bytes), and a consumer takes thousands of them in a row. Validating that part is half
the cost of decoding an alert, so :func:`reuse_shared_part` validates it once per distinct JSON text
and puts the model instance (frozen, like every contract model) in place of the decoded dict; the
event's own validation then takes the instance as it is. Equal JSON texts decode to equal values,
and validation depends on nothing else, so the event is the one full validation gives. A part that
fails is neither kept nor replaced: the event's validation reports it as before, with its full path.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

from recall_shared import events as ev

SHARED_PARTS: dict[type[ev.Event], tuple[tuple[str, ...], type[ev.Model]]] = {
    ev.AlertRaised: (("alert", "recall"), ev.RecallContent),
    ev.AlertUpdated: (("alert", "recall"), ev.RecallContent),
}
"""Event type -> (where the part is in its JSON, its model)."""

MAX_PARTS = 32
"""Distinct parts kept; when full, all are dropped (one atomic step, whatever thread decodes): a
fan-out is one recall at a time."""
MAX_PART_BYTES = 64 * 1024
"""A part longer than this as JSON is validated with its event, never kept."""

_parts: dict[tuple[type[ev.Model], bytes], ev.Model] = {}


def reuse_shared_part(cls: type[ev.Event], payload: Any, context: dict[str, Any] | None) -> None:
    """Replace ``cls``'s shared part in ``payload`` (decoded JSON) by its validated model, from
    the parts validated before when its JSON text is one of them."""
    where = SHARED_PARTS.get(cls)
    if where is None:
        return
    path, model = where
    parent = payload
    for step in path[:-1]:
        parent = parent.get(step) if isinstance(parent, dict) else None
    part = parent.get(path[-1]) if isinstance(parent, dict) else None
    if not isinstance(part, dict):
        return
    try:
        text = orjson.dumps(part)
    except orjson.JSONEncodeError:  # never from orjson's own decoding; no reuse then
        return
    if len(text) > MAX_PART_BYTES:
        return
    key = (model, text)
    found = _parts.get(key)
    if found is None:
        try:
            found = model.model_validate(part, context=context)
        except ValidationError:
            return
        if len(_parts) >= MAX_PARTS:
            _parts.clear()
        _parts[key] = found
    parent[path[-1]] = found


def forget_shared_parts() -> None:
    """Drop every part kept (tests)."""
    _parts.clear()
    _RECALL_JSON.clear()


_RECALL = {"recall"}
_RECALL_JSON: dict[int, tuple[ev.RecallContent, str]] = {}
"""id of a recall content instance -> (the instance, kept so its id is not reused; its JSON)."""


def alert_state_json(state: ev.AlertState) -> str:
    """``state.model_dump_json()`` as a JSON value (the recall content placed last instead of in its
    field's place: the same object), the recall content dumped once per instance. The alerts of a
    fan-out share one (:func:`reuse_shared_part`), so a consumer storing each alert's state dumps
    only the customer's own parts: a third less time than dumping the whole state."""
    recall = state.recall
    kept = _RECALL_JSON.get(id(recall))
    if kept is None or kept[0] is not recall:
        if len(_RECALL_JSON) >= MAX_PARTS:
            _RECALL_JSON.clear()
        kept = _RECALL_JSON[id(recall)] = (recall, recall.model_dump_json())
    own = state.model_dump_json(exclude=_RECALL)
    return f'{own[:-1]},"recall":{kept[1]}}}'
