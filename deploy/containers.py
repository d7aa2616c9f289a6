"""podman as the tests and tools drive it: the project's image, built once, and containers run on
the host network (deploy/image/image.sh holds the build and this machine's podman settings)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGE_SCRIPT = ROOT / "deploy" / "image" / "image.sh"
IMAGE = "localhost/recall-alerts:latest"


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """podman with the settings in deploy/image/containers.conf (runc, no default ulimits)."""
    result = subprocess.run(
        [str(IMAGE_SCRIPT), "podman", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"podman {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
        )
    return result


def build_image(timeout: float = 1200) -> None:
    """Build (or, with podman's layer cache, reuse) the image; the Debian base is made once."""
    result = subprocess.run(
        [str(IMAGE_SCRIPT), "build"], capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"image build failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def env_args(env: dict[str, str]) -> list[str]:
    return [arg for name, value in sorted(env.items()) for arg in ("--env", f"{name}={value}")]


def run_once(command: Sequence[str], env: dict[str, str], timeout: float = 120) -> str:
    """Run one command of the image to its end on the host network; returns its output."""
    result = podman(
        "run", "--rm", "--network", "host", *env_args(env), IMAGE, *command, timeout=timeout
    )
    return str(result.stdout)
