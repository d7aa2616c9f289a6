"""A webhook goes to the address its host was checked at: the URL pinned to it, the Host header
and the TLS name kept (seller_dispatch.pinned, free of I/O)."""

from __future__ import annotations

from recall_intake.seller_dispatch import pinned


def test_a_name_is_pinned_to_the_checked_address_keeping_host_and_tls_name() -> None:
    url, headers, extensions = pinned("https://hooks.example.com/recalls?x=1", "203.0.113.7")
    assert url == "https://203.0.113.7/recalls?x=1"
    assert headers == {"Host": "hooks.example.com"}
    assert extensions == {"sni_hostname": "hooks.example.com"}


def test_a_port_stays_in_host_an_ipv6_address_gets_brackets_and_plain_http_needs_no_sni() -> None:
    url, headers, extensions = pinned("http://hooks.example.com:8080/r", "2001:db8::5")
    assert url == "http://[2001:db8::5]:8080/r"
    assert headers == {"Host": "hooks.example.com:8080"} and extensions == {}


def test_an_address_already_in_the_url_or_none_changes_nothing() -> None:
    assert pinned("http://127.0.0.1:9000/h", "127.0.0.1") == ("http://127.0.0.1:9000/h", {}, {})
    assert pinned("https://hooks.example.com/r", None) == ("https://hooks.example.com/r", {}, {})
