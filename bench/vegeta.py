"""vegeta (github.com/tsenart/vegeta), the constant-rate HTTP load generator the fixed-rate benches
use: v12.13.0 built from the Go module proxy into .cache/tools/ once (`go install`, with the Go
deploy/helm.py builds helm with: `deploy/go_toolchain.py`, the one on PATH if new enough, else the
pinned toolchain from the Go module proxy), then reused.

A load generator shares the machine's two cores with the server it measures: vegeta sends on
schedule (open loop: a new worker when all are busy, so a slow answer does not delay the next
request), in a process of its own whose CPU the bench reports (0.3-0.4 of a core at 1,000
requests/s here), and reports percentiles."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "deploy"))

from go_toolchain import go_binary, go_env  # noqa: E402

VEGETA_MIN_GO = (1, 22, 0)  # vegeta v12.13.0's go.mod
VEGETA_VERSION = "v12.13.0"
VEGETA_DIR = ROOT / ".cache" / "tools" / f"vegeta-{VEGETA_VERSION}"


def vegeta_binary() -> Path:
    """The cached vegeta, built first if missing (about 30 s, once per checkout)."""
    vegeta = VEGETA_DIR / "vegeta"
    if vegeta.exists():
        return vegeta
    go = go_binary(ROOT / ".cache" / "tools", VEGETA_MIN_GO)
    subprocess.run(
        [str(go), "install", f"github.com/tsenart/vegeta/v12@{VEGETA_VERSION}"],
        env={**go_env(go), "GOBIN": str(VEGETA_DIR)},
        check=True,
        timeout=1800,
    )
    return vegeta


def targets(url: str, headers: dict[str, str], bodies: list[bytes]) -> str:
    """vegeta's JSON target lines: one POST per body, sent in this order and round again."""
    head = {k: [v] for k, v in headers.items()}
    return "".join(
        json.dumps(
            {"method": "POST", "url": url, "header": head, "body": base64.b64encode(b).decode()}
        )
        + "\n"
        for b in bodies
    )


def attack(targets_text: str, rate: float, seconds: float) -> tuple[dict, float]:
    """Send the targets at ``rate`` per second for ``seconds``: vegeta's JSON report, and the CPU
    seconds vegeta itself used (what the load cost the machine)."""
    vegeta = str(vegeta_binary())
    with tempfile.TemporaryDirectory() as tmp:
        target_file, results = Path(tmp) / "targets.jsonl", Path(tmp) / "results.bin"
        target_file.write_text(targets_text)
        proc = subprocess.Popen(
            [
                vegeta,
                "attack",
                "-format=json",
                f"-targets={target_file}",
                f"-rate={round(rate)}/1s",
                f"-duration={seconds}s",
                "-max-body=0",  # the answers are not kept: status and timing only
                "-http2=false",
                f"-output={results}",
            ],
            # one OS thread runs its goroutines: less scheduling on two shared cores
            env={**os.environ, "GOMAXPROCS": os.environ.get("GOMAXPROCS", "1")},
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"vegeta attack exited {proc.returncode}")
        report = subprocess.run(
            [vegeta, "report", "-type=json", str(results)],
            capture_output=True,
            check=True,
            timeout=120,
        )
    return json.loads(report.stdout), usage.ru_utime + usage.ru_stime
