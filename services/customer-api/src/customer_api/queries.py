"""The SQL of the hot read routes (GET /v1/me/banner, GET /v1/me/alerts), for raw asyncpg ($n
parameters).

Plain strings with no imports, so the benchmark's bare endpoint (bench/bare_banner.py) runs exactly
the same queries. Every query is scoped by ``customer_id = $1``: the customer of the verified bearer
token. An alert's summary fields are read straight from its stored JSONB state (no ORM entity, no
validation of the state): the state was validated when its event was consumed.
"""

from __future__ import annotations

# The columns of an AlertSummary, in its field order; images come as JSON text.
SUMMARY_COLUMNS = """alert_id, recall_id, status, resolution, state->>'tier' AS tier,
       coalesce(state->'recall'->>'kind', 'recall') AS kind, state->'recall'->>'title' AS title,
       state->'recall'->>'severity' AS severity, state->'recall'->>'hazard' AS hazard,
       state->'recall'->>'stop_using' AS stop_using,
       coalesce(state->'recall'->'images', '[]'::jsonb) AS images,
       (SELECT coalesce(sum((l->>'units')::int), 0)
          FROM jsonb_array_elements(state->'lines') l) AS units,
       acknowledged_at IS NOT NULL AS acknowledged, created_at, updated_at"""

# The one definition of an "open" alert (the banner, the "open" filter), for the pages' ORM
# statements too (logic.unresolved_open): neither withdrawn nor closed, and not resolved by a remedy
# or declaration.
OPEN_ALERT = "status = 'open' AND resolution IS NULL"
RESOLVED_ALERT = f"NOT ({OPEN_ALERT})"  # status is NOT NULL, so this is simply "not open"

# The banner in one round trip: the most severe open alert, with the count of all of them as a
# window aggregate. $1 customer id. The JSON banner and the orders page both read it.
BANNER = f"""SELECT {SUMMARY_COLUMNS}, alert_version, count(*) OVER () AS open_count
FROM alerts
WHERE customer_id = $1 AND {OPEN_ALERT}
ORDER BY severity_rank, created_at DESC
LIMIT 1"""

_STATE_FILTERS = {
    "all": "",
    "open": f" AND {OPEN_ALERT}",
    "resolved": f" AND {RESOLVED_ALERT}",
}


def _alerts(state_filter: str, after_cursor: bool) -> str:
    cursor = " AND (created_at, alert_id) < ($3, $4)" if after_cursor else ""
    return (
        f"SELECT {SUMMARY_COLUMNS}\nFROM alerts\nWHERE customer_id = $1{state_filter}{cursor}\n"
        "ORDER BY created_at DESC, alert_id DESC\nLIMIT $2"
    )


# One page of the customer's alerts, newest first: ALERTS[(state, has_cursor)].
# $1 customer id, $2 page size + 1 (to know whether there is a next page), $3/$4 the cursor's
# created_at/alert_id.
ALERTS: dict[tuple[str, bool], str] = {
    (state, after): _alerts(sql, after)
    for state, sql in _STATE_FILTERS.items()
    for after in (False, True)
}
