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

_SCREENED = {ev.SCREENED_JSON: True}

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
_last: tuple[type[ev.Model], bytes, bytes, ev.Model] | None = None
"""The part reused last, for :func:`loads_sharing`: (its model, its JSON text, the text's first
bytes, its instance)."""
# In place of the last part's text: a JSON string no body screened for \u0000 escapes can hold.
_STAND_IN, _STAND_IN_JSON = "\x00", b'"\\u0000"'
_LEAD = 48


def loads_sharing(cls: type[ev.Event], data: bytes, screened: bool) -> Any:
    """``data`` decoded as JSON (``orjson.loads``, raising its error), ``cls``'s shared part
    replaced by its validated model as :func:`reuse_shared_part` does. When ``data`` holds the
    last part's JSON text, that text is not decoded again: it is swapped for a stand-in first
    and the stand-in, found in the part's place, for the instance. Only for ``screened`` bytes
    (no ``\\u0000`` escape): then a string holding NUL can only be the stand-in, so finding it
    there proves that the text was exactly the part's value (JSON is context-free: a value's text
    in a value's place); anywhere else, or a body that does not decode so, is decoded as usual."""
    where = SHARED_PARTS.get(cls)
    last = _last
    if where is not None and screened and last is not None and last[0] is where[1]:
        text = last[1]
        # Found by its first bytes, then compared whole: a search for the whole text costs as
        # much as decoding it.
        at = data.find(last[2])
        if at >= 0 and data.startswith(text, at):
            try:
                payload = orjson.loads(data[:at] + _STAND_IN_JSON + data[at + len(text) :])
            except orjson.JSONDecodeError:
                payload = None  # decoded as usual below, for the body's own error
            parent = payload
            for step in where[0][:-1]:
                parent = parent.get(step) if isinstance(parent, dict) else None
            if isinstance(parent, dict) and parent.get(where[0][-1]) == _STAND_IN:
                parent[where[0][-1]] = last[3]
                return payload
    payload = orjson.loads(data)
    reuse_shared_part(cls, payload, None if not screened else _SCREENED)
    return payload


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
    global _last
    _last = (model, text, text[:_LEAD], found)
    parent[path[-1]] = found


def forget_shared_parts() -> None:
    """Drop every part kept (tests)."""
    global _last
    _parts.clear()
    _RECALL_JSON.clear()
    _last = None


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
