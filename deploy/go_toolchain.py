"""A Go new enough to build the project's tools: the `go` on PATH when it is, otherwise a pinned Go
toolchain from the Go module proxy (`golang.org/toolchain`, the zip the go command itself switches
to), checked against its pinned checksum and unpacked once into the tools cache.

Stock Debian 12's golang (1.19) is too old, and `make deps` installs no Go: this is how a bare
machine gets one."""

from __future__ import annotations

import base64
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

PROXY = "https://proxy.golang.org"
GO_VERSION = (1, 26, 8)
# The toolchain zips' go.sum hashes (dirhash h1), as the checksum database has them: `curl
# $PROXY/sumdb/sum.golang.org/lookup/golang.org/toolchain@v0.0.1-go1.26.8.linux-amd64`.
TOOLCHAIN_SUMS = {
    "linux-amd64": "h1:ZOmGe1OnfREDMIdb1Qi4G9JSuDPBLGExZMQ4nis1RXM=",
    "linux-arm64": "h1:sYL/O6MqS68ML0kjsQ36WoYIpJqkw60TxizWUYUKQMc=",
}
INSTALLER_BIN = "/usr/local/go/bin"
ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}

GoVersion = tuple[int, int, int]


def log(message: str) -> None:
    print(f"go: {message}", file=sys.stderr, flush=True)


def version_text(version: GoVersion) -> str:
    return "go" + ".".join(map(str, version))


def parse_go_version(output: str) -> GoVersion | None:
    """`go version` output -> (major, minor, patch); None when it names no release (a devel build).
    go1.26 and go1.26rc1 count as go1.26.0."""
    match = re.search(r"\bgo(\d+)\.(\d+)(?:\.(\d+))?", output)
    if match is None:
        return None
    return int(match[1]), int(match[2]), int(match[3] or 0)


def installed_go() -> str | None:
    """The `go` on PATH, else the one where Go's own installer puts it (not always on PATH)."""
    return shutil.which("go") or shutil.which("go", path=INSTALLER_BIN)


def path_go_if_new_enough(
    minimum: GoVersion,
    find: Callable[[], str | None] = installed_go,
    version_of: Callable[[str], str] | None = None,
) -> Path | None:
    """The installed `go` if it is at least `minimum`, else None (the pinned toolchain is used)."""
    go = find()
    if go is None:
        return None
    output = (version_of or _go_version_output)(go)
    version = parse_go_version(output)
    if version is None or version < minimum:
        log(f"{go} is {output.strip() or 'unknown'}; older than {version_text(minimum)}")
        return None
    return Path(go)


def _go_version_output(go: str) -> str:
    result = subprocess.run(
        [go, "version"], capture_output=True, text=True, check=False, timeout=60
    )
    return result.stdout


def platform_name() -> str:
    arch = ARCHES.get(platform.machine().lower())
    if sys.platform != "linux" or arch is None:
        raise RuntimeError(
            f"no pinned Go toolchain for {sys.platform}/{platform.machine()}: "
            f"install Go {version_text(GO_VERSION)} or later on PATH"
        )
    return f"linux-{arch}"


def toolchain_module_version(version: GoVersion, platform_: str) -> str:
    return f"v0.0.1-{version_text(version)}.{platform_}"


def zip_hash1(zip_path: Path) -> str:
    """The go.sum hash of a module zip (golang.org/x/mod/sumdb/dirhash Hash1 of its files)."""
    summary = hashlib.sha256()
    with zipfile.ZipFile(zip_path) as archive:
        for name in sorted((info.filename for info in archive.infolist()), key=str.encode):
            file_hash = hashlib.sha256()
            with archive.open(name) as member:
                for block in iter(lambda: member.read(1 << 20), b""):
                    file_hash.update(block)
            summary.update(f"{file_hash.hexdigest()}  {name}\n".encode())
    return "h1:" + base64.b64encode(summary.digest()).decode()


def download(url: str, target: Path, label: str) -> None:
    """url -> target, with a running "label: X / Y MB" (one line redrawn on a terminal, else a line
    every 10 %)."""
    tty = sys.stderr.isatty()
    with urllib.request.urlopen(url, timeout=60) as response, target.open("wb") as out:
        total = int(response.headers.get("Content-Length") or 0)
        done, reported = 0, -1
        for block in iter(lambda: response.read(1 << 16), b""):
            out.write(block)
            done += len(block)
            tenth = done * 10 // total if total else 0
            if tty or tenth != reported:
                reported = tenth
                line = f"{label}: {done / 1048576:.1f} / {total / 1048576:.1f} MB"
                print(f"\r{line}" if tty else line, end="" if tty else "\n", file=sys.stderr)
        if tty:
            print(file=sys.stderr)


def unpack(zip_path: Path, prefix: str, target: Path) -> None:
    """The zip's files under `prefix` into target, keeping their executable bits."""
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            if not info.filename.startswith(prefix) or info.is_dir():
                continue
            relative = Path(info.filename[len(prefix) :])
            if relative.is_absolute() or ".." in relative.parts:
                raise RuntimeError(f"unexpected path in the toolchain zip: {info.filename}")
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as member, destination.open("wb") as out:
                shutil.copyfileobj(member, out)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                destination.chmod(mode)


def fetch_toolchain(tools: Path, version: GoVersion = GO_VERSION) -> Path:
    """The pinned toolchain's bin/go under tools/, downloaded and checked first if missing."""
    platform_ = platform_name()
    root = tools / f"{version_text(version)}.{platform_}"
    go = root / "bin" / "go"
    if go.exists():
        return go
    module_version = toolchain_module_version(version, platform_)
    url = f"{PROXY}/golang.org/toolchain/@v/{module_version}.zip"
    tools.mkdir(parents=True, exist_ok=True)
    log(f"downloading {version_text(version)} ({platform_}) from the Go module proxy: {url}")
    with tempfile.TemporaryDirectory(dir=tools) as scratch:
        zip_path = Path(scratch) / "toolchain.zip"
        download(url, zip_path, f"go: {version_text(version)}")
        expected = TOOLCHAIN_SUMS[platform_]
        actual = zip_hash1(zip_path)
        if actual != expected:
            raise RuntimeError(f"{url}: checksum {actual}, expected {expected}; not used")
        log(f"checksum ok ({actual}); unpacking into {root}")
        unpacked = Path(scratch) / "go"
        unpack(zip_path, f"golang.org/toolchain@{module_version}/", unpacked)
        # Renamed into place last, so an interrupted run leaves nothing that looks complete.
        unpacked.rename(root)
    return go


def go_binary(tools: Path, minimum: GoVersion) -> Path:
    """A go at least `minimum`: the one on PATH, else the pinned toolchain (fetched once)."""
    if minimum > GO_VERSION:
        raise ValueError(
            f"{version_text(minimum)} is newer than the pinned {version_text(GO_VERSION)}"
        )
    found = path_go_if_new_enough(minimum)
    if found is not None:
        return found
    return fetch_toolchain(tools)


def go_env(go: Path) -> dict[str, str]:
    """The environment to run `go` in: this exact toolchain (no switching to another one), its own
    bin first on PATH."""
    return {
        **os.environ,
        "GOTOOLCHAIN": "local",
        "PATH": f"{go.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
