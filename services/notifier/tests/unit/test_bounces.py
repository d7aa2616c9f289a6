"""Reading bounces: DSN samples in the shapes real MTAs send (RFC 3464's own examples, Postfix,
Exchange Online, Gmail), a feedback-loop complaint (ARF), and the per-notice return path."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier.bounces import notice_of_message_id, notice_of_verp, parse_report, verp_address
from notifier.domain import DeliveryReport

SAMPLES = Path(__file__).parent / "dsn_samples"
NOTICE = "3f2c8a9e-1b7d-4c55-9a0e-6d2f4b8c1e07"
BOUNCES = "bounces@recall-alerts.invalid"


def reports(name: str) -> list[tuple[str, str, str | None, str, str | None]]:
    out = parse_report((SAMPLES / name).read_bytes())
    return [
        (r.recipient, r.report.kind, r.report.bounce_type, r.report.status, r.notice_id)
        for r in out
    ]


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        (
            "postfix_user_unknown.eml",
            [("nobody-here@customer.example", "bounced", "hard", "5.1.1", NOTICE)],
        ),
        ("exchange_ndr.eml", [("j.smith@corp.example", "bounced", "hard", "5.1.10", NOTICE)]),
        (
            "gmail_no_such_user.eml",
            [("no.such.user.4711@gmail.com", "bounced", "hard", "5.1.1", NOTICE)],
        ),
        (
            "postfix_mailbox_full.eml",
            [("full@customer.example", "bounced", "soft", "5.2.2", NOTICE)],
        ),
        ("postfix_delayed.eml", [("slow@customer.example", "delayed", None, "4.4.1", NOTICE)]),
        ("postfix_success.eml", [("reader@customer.example", "delivered", None, "2.0.0", NOTICE)]),
        # RFC 3464's examples return "[original message goes here]": no notice in the headers,
        # only the return path can name it.
        (
            "rfc3464_simple_failure.eml",
            [("louisl@larry.slip.umd.edu", "bounced", "soft", "4.0.0", None)],
        ),
        (
            "rfc3464_multiple_recipients.eml",
            [
                ("arathib@vnet.ibm.com", "bounced", "hard", "5.0.0", None),
                ("johnh@hpnjld.njd.hp.com", "delayed", None, "4.0.0", None),
                ("wsnell@sdcc13.ucsd.edu", "bounced", "hard", "5.0.0", None),
            ],
        ),
        ("arf_abuse_complaint.eml", [("reader@mailbox.example", "complained", None, "", NOTICE)]),
    ],
)
def test_real_dsn_shapes_are_read(sample: str, expected: list) -> None:
    assert reports(sample) == expected


def test_the_diagnostic_is_kept_on_one_line() -> None:
    (gmail,) = parse_report((SAMPLES / "gmail_no_such_user.eml").read_bytes())
    assert gmail.report.detail.startswith("smtp; 550-5.1.1 The email account")
    assert "\n" not in gmail.report.detail


def test_a_message_that_is_no_report_says_nothing() -> None:
    auto_reply = (
        b"From: a@customer.example\r\nTo: bounces@recall-alerts.invalid\r\n"
        b"Subject: Out of office\r\nContent-Type: text/plain\r\n\r\nBack on Monday.\r\n"
    )
    assert parse_report(auto_reply) == []
    assert parse_report(b"\x00\xff garbage") == []


def test_the_return_path_names_its_notice_and_cannot_be_forged() -> None:
    verp = verp_address(BOUNCES, NOTICE, "s3cret")
    local, domain = verp.split("@")
    assert domain == "recall-alerts.invalid" and local.startswith(f"bounces+{NOTICE}.")
    assert len(local) <= 64, "RFC 5321 limit on a local part"
    assert notice_of_verp(verp, BOUNCES, "s3cret") == NOTICE
    assert notice_of_verp(f"<{verp.upper()}>", BOUNCES, "s3cret") == NOTICE
    assert notice_of_verp(verp, BOUNCES, "another secret") is None
    other = "aaaaaaaa-1b7d-4c55-9a0e-6d2f4b8c1e07"
    assert notice_of_verp(verp.replace(NOTICE, other), BOUNCES, "s3cret") is None
    assert (
        notice_of_verp(verp.replace("recall-alerts.invalid", "x.example"), BOUNCES, "s3cret")
        is None
    )
    assert notice_of_verp(BOUNCES, BOUNCES, "s3cret") is None


def test_our_message_ids_name_their_notice() -> None:
    assert notice_of_message_id(f"<{NOTICE}@recall-alerts.notices>") == NOTICE
    assert notice_of_message_id(f"{NOTICE}@recall-alerts.notices") == NOTICE
    assert notice_of_message_id("20260203192638.000be97f99f8cea1@sample.mailgun.com") is None


def test_reports_are_plain_values() -> None:
    assert DeliveryReport("delivered") == DeliveryReport("delivered", None, "", "")
