"""A private PostgreSQL server, Kafka broker and SMTP sink for the reliability tests.

These tests stop, restart and freeze the infrastructure, so they never touch the shared servers that
other tests use (127.0.0.1:5432, :9092, :1025): each piece here runs from a temporary directory on
free ports and is stopped at the end. The recipes follow deploy/postgres/postgres.sh (Debian's
binaries; as root, the server runs as the ``postgres`` user, since PostgreSQL refuses root) and
deploy/kafka/kafka.sh (the cached broker jars, one KRaft node as broker and controller), with
settings for speed over durability.
"""

from __future__ import annotations

import base64
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg

REPO = Path(__file__).resolve().parents[2]
SUPERUSER = "recall_alerts"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} unreadable)"


def postgres_bin() -> Path:
    """The newest Debian server binaries, as deploy/postgres/postgres.sh picks them."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3])
    )
    if not found:
        raise RuntimeError(
            "PostgreSQL server binaries not found under /usr/lib/postgresql "
            "(deploy/postgres/postgres.sh install)"
        )
    return found[-1].parent


class PrivatePostgres:
    """One PostgreSQL cluster in ``root``, trust auth on 127.0.0.1 only, no Unix socket."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "postgres"
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.port = free_port()
        self.bin = postgres_bin()
        self._owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        # As root: as the postgres OS user (runuser, as postgres.sh does); otherwise as ourselves.
        prefix = ["runuser", "-u", "postgres", "--"] if self._owner else []
        result = subprocess.run(
            [*prefix, *args], cwd="/", text=True, capture_output=True, check=False
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}\n"
                f"{_tail(self.log)}"
            )
        return result

    def init(self) -> None:
        self.dir.mkdir(parents=True)
        if self._owner:
            os.chown(self.dir, self._owner.pw_uid, self._owner.pw_gid)
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        )

    def start(self) -> None:
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                "-c unix_socket_directories=''",
                "-c max_connections=300",
                # Throwaway data: durability costs the 2-core CI machine time and buys nothing here.
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
            ]
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        """A fast shutdown: open sessions are terminated (what an operator's restart does)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def stop_if_running(self) -> None:
        status = self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "status", check=False)
        if status.returncode == 0:
            self.stop()

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def url(self, database: str) -> str:
        """The SQLAlchemy URL a service is configured with."""
        return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    async def create_databases(self, names: list[str]) -> None:
        conn = await asyncpg.connect(self.dsn())
        try:
            for name in names:
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()


def kafka_version() -> str:
    pom = (REPO / "deploy" / "kafka" / "pom.xml").read_text()
    found = re.search(r"<kafka\.version>\s*([^<\s]+)\s*</kafka\.version>", pom)
    if not found:
        raise RuntimeError("no <kafka.version> in deploy/kafka/pom.xml")
    return found.group(1)


def kafka_jars() -> Path:
    """REPO/.cache/kafka/jars-<version>, fetched by kafka.sh (make infra-up) when missing."""
    jars = REPO / ".cache" / "kafka" / f"jars-{kafka_version()}"
    if not (jars / ".complete").exists():
        subprocess.run([str(REPO / "deploy" / "kafka" / "kafka.sh"), "fetch"], check=True)
    return jars


class PrivateKafka:
    """One KRaft node (broker + controller) in ``root`` on free ports."""

    def __init__(self, root: Path, heap: str = "-Xmx512m -Xms128m") -> None:
        self.dir = root / "kafka"
        self.storage = self.dir / "data"
        self.logs = self.dir / "logs"
        self.port = free_port()
        self.controller_port = free_port()
        self.heap = heap
        self.jars = kafka_jars()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def server_log(self) -> Path:
        return self.logs / "server.log"

    def init(self) -> None:
        self.logs.mkdir(parents=True)
        self.storage.mkdir()
        props = self.dir / "server.properties"
        props.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},"
                    f"CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                    f"log.dirs={self.storage}",
                    "auto.create.topics.enable=false",
                    "num.partitions=3",
                    "default.replication.factor=1",
                    "min.insync.replicas=1",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=3",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "transaction.state.log.num.partitions=3",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    # A restarted node is refused until its previous session expires (see kafka.sh).
                    "broker.session.timeout.ms=4000",
                    "broker.heartbeat.interval.ms=1000",
                    "",
                ]
            )
        )
        (self.dir / "log4j2.properties").write_text(
            "\n".join(
                [
                    "status = warn",
                    "appender.file.type = File",
                    "appender.file.name = FILE",
                    f"appender.file.fileName = {self.server_log}",
                    "appender.file.layout.type = PatternLayout",
                    "appender.file.layout.pattern = [%d] %p %m (%c)%n",
                    "rootLogger.level = info",
                    "rootLogger.appenderRef.file.ref = FILE",
                    "logger.kafka.name = kafka",
                    "logger.kafka.level = warn",
                    "logger.apache.name = org.apache.kafka",
                    "logger.apache.level = warn",
                    # The one line start() waits for.
                    "logger.server.name = kafka.server.KafkaRaftServer",
                    "logger.server.level = info",
                    "",
                ]
            )
        )
        # A cluster id is 16 random bytes in URL-safe base64 (what StorageTool random-uuid prints).
        # Like Kafka's Uuid.randomUuid, never one that starts with "-": the tool's argument parser
        # would take it for an option (1 start in 64 failed that way).
        cluster_id = "-"
        while cluster_id.startswith("-"):
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        result = subprocess.run(
            [
                *self._java(),
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(props),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")

    def _java(self) -> list[str]:
        return [
            "java",
            *self.heap.split(),
            "-XX:+UseG1GC",
            "-XX:TieredStopAtLevel=1",  # C1 only: a faster start on 2 cores
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.dir / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.logs}",
            "-cp",
            f"{self.jars}/*",
        ]

    def _started_lines(self) -> int:
        try:
            return self.server_log.read_text(errors="replace").count("Kafka Server started")
        except FileNotFoundError:
            return 0

    def start(self, timeout: float = 90.0) -> None:
        before = self._started_lines()
        out = open(self.logs / "stdout.log", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [*self._java(), "kafka.Kafka", str(self.dir / "server.properties")],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"Kafka exited with {self.process.returncode} during start:\n"
                    f"{_tail(self.server_log)}\n{_tail(self.logs / 'stdout.log')}"
                )
            if self._started_lines() > before and port_open(self.port):
                return
            time.sleep(0.2)
        raise RuntimeError(f"Kafka not ready within {timeout}s:\n{_tail(self.server_log)}")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (a controlled shutdown), SIGKILL if it takes longer than ``timeout``."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGCONT)  # in case a test left it frozen
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """SIGKILL the broker (frozen or not): requests it received but had not handled die too."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def freeze(self) -> None:
        """SIGSTOP: the broker holds every connection open and answers nothing."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


class PrivateSmtp:
    """deploy/smtp/smtp_sink.py on free ports with its own Maildir (its JSON view lists mail)."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "smtp"
        self.port = free_port()
        self.http_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def viewer(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 20.0) -> None:
        self.dir.mkdir(parents=True)
        out = open(self.dir / "sink.log", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(REPO / "deploy" / "smtp" / "smtp_sink.py"),
                "--port",
                str(self.port),
                "--http-port",
                str(self.http_port),
                "--maildir",
                str(self.dir / "mail"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not (port_open(self.port) and port_open(self.http_port)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"SMTP sink did not start:\n{_tail(self.dir / 'sink.log')}")
            time.sleep(0.1)

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def keep_logs(root: Path, artifacts: Path) -> None:
    """Copy the servers' logs next to the services' before the temporary directory goes."""
    artifacts.mkdir(parents=True, exist_ok=True)
    for log in (
        root / "postgres" / "postgres.log",
        root / "kafka" / "logs" / "server.log",
        root / "kafka" / "logs" / "stdout.log",
        root / "smtp" / "sink.log",
    ):
        if log.exists():
            shutil.copy(log, artifacts / f"infra-{log.parent.name}-{log.name}")
