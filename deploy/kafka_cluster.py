"""deploy/kafka/cluster.sh driven from Python (the tests): three KRaft brokers in a directory of the
caller's, on a free port range."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

CLUSTER_SCRIPT = Path(__file__).resolve().parent / "kafka" / "cluster.sh"


def free_port_base() -> int:
    """A base whose six ports (base+1..3, base+101..103) are all free now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1]) // 10 * 10
        if base + 103 > 65535:
            continue
        ports = [base + n for n in (1, 2, 3, 101, 102, 103)]
        if all(socket.socket().connect_ex(("127.0.0.1", p)) != 0 for p in ports):
            return base
    raise RuntimeError("no free port range for the cluster")


class Cluster:
    def __init__(self, directory: Path, heap: str = "-Xmx384m -Xms128m") -> None:
        self.env = {
            **os.environ,
            "KAFKA_CLUSTER_DIR": str(directory),
            "KAFKA_CLUSTER_PORT_BASE": str(free_port_base()),
            "KAFKA_HEAP_OPTS": heap,
        }

    def __call__(self, *args: str) -> str:
        result = subprocess.run(
            [str(CLUSTER_SCRIPT), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"cluster.sh {' '.join(args)}: {result.stdout}{result.stderr}")
        return result.stdout.strip()
