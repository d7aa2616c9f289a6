#!/usr/bin/env python3
"""Local SMTP sink for development and tests (never delivers anything).

Accepts every message on 127.0.0.1:1025 and stores it in a Maildir (default <repo>/.data/mail) with
the SMTP envelope added as headers ``X-Sink-Mail-From`` / ``X-Sink-Rcpt-To``. Any AUTH credentials
are accepted; STARTTLS is not offered.

A read-only HTTP view runs on 127.0.0.1:8025:
  /                  HTML list of messages (newest first)
  /messages          JSON list: [{"id", "from", "to", "subject", "date", "mail_from", "rcpt_to",
  "received_at"}]
                     optional filter ?rcpt=<substring> (matches envelope recipients or the To
                     header)
  /messages/<id>     raw message (text/plain)

Run: python deploy/smtp/smtp_sink.py [--host H] [--port P] [--maildir DIR] [--http-port P] Requires
aiosmtpd (in the project venv).
"""

from __future__ import annotations

import argparse
import asyncio
import email.parser
import email.policy
import html
import json
import logging
import mailbox
import re
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

try:
    from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit(
        "smtp_sink: aiosmtpd is not installed for this interpreter "
        f"({sys.executable}); install the project dependencies or `pip install aiosmtpd`"
    )

# aiosmtpd itself sets the deprecated Session.login_data during AUTH and logs a warning each time.
logging.getLogger("mail.log").addFilter(
    lambda record: "login_data is deprecated" not in record.getMessage()
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MAILDIR = REPO_ROOT / ".data" / "mail"
_HEADER_UNSAFE = re.compile(r"[\r\n\x00]")
_HEADER_PARSER = email.parser.BytesParser(policy=email.policy.default)


def _log(text: str) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    print(f"{stamp} {text}", flush=True)


def _clean(value: str) -> str:
    return _HEADER_UNSAFE.sub(" ", value)


class MailStore:
    """Thread-safe wrapper around a stdlib Maildir."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ensure_dirs()
        self._box = mailbox.Maildir(str(path), create=True)
        self._lock = threading.Lock()
        self._summaries: dict[
            str, dict[str, Any]
        ] = {}  # parsed once per message: listings stay cheap

    def _ensure_dirs(self) -> None:
        # Maildir(create=True) only creates tmp/new/cur when the top directory is missing; also
        # recreate them if somebody (e.g. a test) wiped the maildir while the sink is running.
        for sub in ("tmp", "new", "cur"):
            (self.path / sub).mkdir(parents=True, exist_ok=True)

    def add(self, raw: bytes) -> str:
        with self._lock:
            self._ensure_dirs()
            return self._box.add(raw)

    def raw(self, key: str) -> bytes | None:
        with self._lock:
            try:
                with self._box.get_file(key) as fh:
                    return fh.read()
            except (KeyError, FileNotFoundError):
                return None

    def summaries(self) -> list[dict[str, Any]]:
        with self._lock:
            try:
                keys = list(
                    self._box.keys()
                )  # re-reads the directory: sees files added/removed by others
            except FileNotFoundError:
                return []
            items = []
            for key in keys:
                cached = self._summaries.get(key)
                if cached is None:
                    try:
                        with self._box.get_file(key) as fh:
                            # typeshed: mailbox's _ProxyFile lacks members of the _WrappedBuffer
                            # protocol BytesParser declares, though parse() only reads it.
                            headers = _HEADER_PARSER.parse(fh, headersonly=True)  # type: ignore[arg-type]
                    except (KeyError, FileNotFoundError):
                        continue
                    try:
                        received_at = float(
                            str(headers.get("X-Sink-Received-At", "")) or key.split(".", 1)[0]
                        )
                    except ValueError:
                        received_at = 0.0
                    cached = self._summaries[key] = _summary(key, headers, received_at)
                items.append(cached)
            for gone in self._summaries.keys() - set(keys):
                del self._summaries[gone]
        items.sort(key=lambda m: (m["received_at"], m["id"]), reverse=True)
        return items


def _header(headers: Any, name: str) -> str:
    try:
        value = headers.get(name)
        return "" if value is None else str(value)
    except Exception:  # malformed header: fall back to the raw value
        raw = headers.get_all(name, failobj=[""])
        return str(raw[0]) if raw else ""


def _summary(key: str, headers: Any, received_at: float) -> dict[str, Any]:
    rcpt = _header(headers, "X-Sink-Rcpt-To")
    return {
        "id": key,
        "from": _header(headers, "From"),
        "to": _header(headers, "To"),
        "subject": _header(headers, "Subject"),
        "date": _header(headers, "Date"),
        "mail_from": _header(headers, "X-Sink-Mail-From"),
        "rcpt_to": [r.strip() for r in rcpt.split(",") if r.strip()],
        "received_at": received_at,
    }


class SinkHandler:
    def __init__(self, store: MailStore) -> None:
        self.store = store

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        mail_from = _clean(envelope.mail_from or "")
        rcpt_to = ", ".join(_clean(r) for r in envelope.rcpt_tos)
        prefix = (
            f"X-Sink-Mail-From: {mail_from}\r\n"
            f"X-Sink-Rcpt-To: {rcpt_to}\r\n"
            f"X-Sink-Peer: {_clean(str(session.peer))}\r\n"
            f"X-Sink-Received-At: {time.time():.6f}\r\n"
        ).encode()
        key = await asyncio.get_running_loop().run_in_executor(
            None, self.store.add, prefix + content
        )
        try:
            subject = str(_HEADER_PARSER.parsebytes(content, headersonly=True).get("Subject", ""))
        except Exception:
            subject = "?"
        _log(
            f"received id={key} from={mail_from!r} to={rcpt_to!r} "
            f"subject={subject!r} bytes={len(content)}"
        )
        return "250 Message accepted for delivery"


def _accept_any_auth(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    return AuthResult(success=True)


def _make_http_handler(store: MailStore) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "RecallAlertsSmtpSink/1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep stdout for received-mail lines only

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            path = url.path
            try:
                if path == "/":
                    self._send(
                        HTTPStatus.OK,
                        _render_index(store).encode("utf-8"),
                        "text/html; charset=utf-8",
                    )
                elif path in ("/messages", "/messages/"):
                    items = store.summaries()
                    rcpt = parse_qs(url.query).get("rcpt", [None])[0]
                    if rcpt:
                        needle = rcpt.lower()
                        items = [
                            m
                            for m in items
                            if any(needle in r.lower() for r in m["rcpt_to"])
                            or needle in m["to"].lower()
                        ]
                    body = json.dumps(items, ensure_ascii=False, indent=1).encode("utf-8")
                    self._send(HTTPStatus.OK, body, "application/json; charset=utf-8")
                elif path.startswith("/messages/"):
                    key = unquote(path[len("/messages/") :])
                    raw = store.raw(key) if key and "/" not in key else None
                    if raw is None:
                        self._send(
                            HTTPStatus.NOT_FOUND, b"no such message\n", "text/plain; charset=utf-8"
                        )
                    else:
                        self._send(HTTPStatus.OK, raw, "text/plain; charset=utf-8")
                else:
                    self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler


def _render_index(store: MailStore) -> str:
    rows = []
    for m in store.summaries():
        received = datetime.fromtimestamp(m["received_at"], UTC).strftime("%Y-%m-%d %H:%M:%S")
        rows.append(
            "<tr>"
            f"<td>{html.escape(received)}</td>"
            f"<td>{html.escape(m['date'])}</td>"
            f"<td>{html.escape(m['to'] or ', '.join(m['rcpt_to']))}</td>"
            f"<td>{html.escape(m['from'])}</td>"
            f'<td><a href="/messages/{html.escape(quote(m["id"], safe=""))}">'
            f"{html.escape(m['subject'] or '(no subject)')}</a></td>"
            "</tr>"
        )
    table = "\n".join(rows) or '<tr><td colspan="5">no messages yet</td></tr>'
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>SMTP sink</title>
<style>body{{font-family:sans-serif}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}</style></head>
<body><h1>SMTP sink</h1><p>{len(rows)} message(s) in {html.escape(str(store.path))}.
JSON: <a href="/messages">/messages</a></p>
<table><tr><th>Received (UTC)</th><th>Date</th><th>To</th><th>From</th><th>Subject</th></tr>
{table}
</table></body></html>
"""


async def _serve(args: argparse.Namespace, maildir: Path) -> None:
    store = MailStore(maildir)
    handler = SinkHandler(store)
    loop = asyncio.get_running_loop()

    def factory() -> SMTP:
        return SMTP(
            handler,
            hostname="smtp-sink.local",
            decode_data=False,
            enable_SMTPUTF8=True,
            data_size_limit=50 * 1024 * 1024,
            authenticator=_accept_any_auth,
            auth_require_tls=False,
            auth_required=False,
        )

    smtp_server = await loop.create_server(
        factory, host=args.host, port=args.port, reuse_address=True
    )

    httpd: ThreadingHTTPServer | None = None
    http_thread: threading.Thread | None = None
    if args.http_port:
        ThreadingHTTPServer.allow_reuse_address = True
        httpd = ThreadingHTTPServer(
            (args.http_host or args.host, args.http_port), _make_http_handler(store)
        )
        httpd.daemon_threads = True
        http_thread = threading.Thread(target=httpd.serve_forever, name="http-view", daemon=True)
        http_thread.start()

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    http_note = (
        f", HTTP view on http://{args.http_host or args.host}:{args.http_port}" if httpd else ""
    )
    _log(f"smtp sink listening on {args.host}:{args.port}{http_note}, maildir {store.path}")
    await stop.wait()

    _log("shutting down")
    smtp_server.close()
    await smtp_server.wait_closed()
    if httpd is not None:
        httpd.shutdown()
        httpd.server_close()
    _log("stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Local SMTP sink that stores every message in a Maildir."
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="SMTP listen address (default 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, default=1025, help="SMTP port (default 1025)")
    parser.add_argument(
        "--maildir", default=str(DEFAULT_MAILDIR), help=f"Maildir path (default {DEFAULT_MAILDIR})"
    )
    parser.add_argument(
        "--http-host", default=None, help="HTTP view listen address (default: same as --host)"
    )
    parser.add_argument(
        "--http-port", type=int, default=8025, help="HTTP view port, 0 disables (default 8025)"
    )
    args = parser.parse_args(argv)
    try:
        asyncio.run(_serve(args, Path(args.maildir).resolve()))
    except OSError as exc:
        print(f"smtp_sink: cannot listen: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
