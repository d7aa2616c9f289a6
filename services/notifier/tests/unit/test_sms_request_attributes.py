"""The Twilio adapter describes its HTTP request on the current span (the SMS sender's
``sms send``) under the OpenTelemetry HTTP client names, a request that never got an answer too.
The accepted and refused requests are covered through the sender in
tests/integration/test_channel_traces.py."""

from __future__ import annotations

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from notifier.sms import SmsError, TwilioSms


def refusing_connections(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def adapter(client: httpx.AsyncClient) -> TwilioSms:
    return TwilioSms(
        account_sid="AC123",
        auth_token="token",
        from_="+15005550006",
        base_url="https://api.twilio.example",
        client=client,
    )


async def test_a_request_without_an_answer_names_its_error_type() -> None:
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    async with httpx.AsyncClient(transport=httpx.MockTransport(refusing_connections)) as client:
        with (
            provider.get_tracer("test").start_as_current_span("sms send"),
            pytest.raises(SmsError) as failed,
        ):
            await adapter(client).send(to="+4915112345678", body="Recall", status_callback="")
    assert not failed.value.permanent
    (span,) = exported.get_finished_spans()
    assert dict(span.attributes or {}) == {
        "http.request.method": "POST",
        "url.full": "https://api.twilio.example/2010-04-01/Accounts/AC123/Messages.json",
        "server.address": "api.twilio.example",
        "server.port": 443,
        "error.type": "ConnectError",
    }
