"""schemathesis against each service's own OpenAPI document, with valid credentials: every default
check (no server error, documented statuses, content types and bodies, positive data accepted,
negative data rejected, auth not ignored ...) passes on every operation.

The five services run as processes (tests/conftest.py ``stack``), on fresh databases. Examples are
bounded (``MAX_EXAMPLES`` per operation and phase) so the whole run stays within a few minutes.
"""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
import schemathesis
from devstack import SERVICES, Stack  # type: ignore[import-not-found]  # tests/conftest.py: deploy/
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.schemas import BaseSchema

from recall_shared.auth import issue_customer_token

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

JWT_SECRET = "e2e-" + "s" * 40  # tests/conftest.py's stack
MAX_EXAMPLES = 8
# Each service, and a read route that answers 401 until the operator key is known there.
KEY_PROBES = {
    "recall-intake": "/v1/recalls",
    "purchase-matcher": "/v1/recalls/probe/matches",
    "notifier": "/v1/alerts/probe/notices",
    "refund-logistics": "/v1/cases",
    "customer-api": None,
}


@pytest.fixture(scope="module")
def credentials(stack: Stack) -> dict[str, str]:
    """An operator key (issued by recall-intake, known everywhere once sellers.v1 is read) and a
    customer's bearer token: each request carries both; each service reads the one it takes."""
    intake = next(s for s in SERVICES if s.name == "recall-intake")
    key = stack.run_cli(intake, "issue-api-key", "--label", "schemathesis", capture=True)
    token = issue_customer_token(f"cust-{uuid.uuid4().hex[:8]}", JWT_SECRET)
    headers = {"X-Api-Key": key.splitlines()[-1].strip(), "Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + 60
    for service, probe in KEY_PROBES.items():
        while probe is not None:
            r = httpx.get(stack.url(service) + probe, headers=headers, timeout=10)
            if r.status_code != 401:
                break
            assert time.monotonic() < deadline, f"{service} never accepted the operator key"
            time.sleep(0.3)
    return headers


def _failures(schema: BaseSchema, credentials: dict[str, str], mode: GenerationMode) -> list[str]:
    """Each operation's examples in one generation mode; what failed, one line per operation."""
    found: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=True,  # the same examples every run: a failure here is never luck
            phases=[Phase.explicit, Phase.generate],  # no shrinking: the first failure is enough
        )
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=credentials, timeout=10)

        try:
            run()
        except Unsatisfiable:
            continue  # negative mode on an operation without inputs: nothing to make invalid
        except Exception as exc:  # a failed check, reported with the operation it came from
            found.append(f"{mode} {operation.label}: {str(exc)[:1500]}")
    return found


# Checks schemathesis still fails on, because JSON Schema cannot state the rule: a GTIN's check
# digit (recall-intake answers 422 invalid_scope), an uploaded photo's content (refund-logistics
# answers 422/415 for an empty or non-image part). Strict: once such a service passes, this fails
# until it is taken off the list (issue 13 stays open on them).
KNOWN_SEMANTIC_REJECTIONS = {
    "recall-intake": "GTIN check digits are validated beyond the schema",
    "refund-logistics": "proof photos are validated (non-empty, an image) beyond the schema",
}


@pytest.mark.parametrize(
    "service",
    [
        pytest.param(
            name,
            marks=[pytest.mark.xfail(strict=True, reason=KNOWN_SEMANTIC_REJECTIONS[name])]
            if name in KNOWN_SEMANTIC_REJECTIONS
            else [],
        )
        for name in KEY_PROBES
    ],
)
def test_schemathesis_default_checks_pass(
    stack: Stack, credentials: dict[str, str], service: str
) -> None:
    schema = schemathesis.openapi.from_url(stack.url(service) + "/openapi.json", timeout=10)
    schema.config.update(base_url=stack.url(service), headers=credentials)
    # Every API refuses NUL and lone surrogates in any string with a 422 naming the field (one rule
    # for every string, stated in each document's description, which JSON Schema cannot say per
    # field without a pattern on each): examples keep to text that rule admits.
    schema.config.generation.update(allow_x00=False, codec="utf-8")
    failures = [
        f
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        for f in _failures(schema, credentials, mode)
    ]
    assert not failures, "\n\n".join(failures)
