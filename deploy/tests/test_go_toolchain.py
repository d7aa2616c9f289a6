"""deploy/go_toolchain.py without the network: which go it picks, how it reads `go version`, the
go.sum hash it checks a toolchain zip against, and how it unpacks one (a local zip stands in for
the download)."""

from __future__ import annotations

import stat
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy"))

import go_toolchain  # noqa: E402
from go_toolchain import (  # noqa: E402
    GO_VERSION,
    fetch_toolchain,
    go_binary,
    parse_go_version,
    path_go_if_new_enough,
    zip_hash1,
)
from helm import HELM_MIN_GO  # noqa: E402


@pytest.mark.parametrize(
    ("output", "version"),
    [
        ("go version go1.26.8 linux/amd64", (1, 26, 8)),
        ("go version go1.19.8 linux/amd64", (1, 19, 8)),  # Debian 12's golang
        ("go version go1.26 linux/amd64", (1, 26, 0)),
        ("go version go1.26rc1 linux/amd64", (1, 26, 0)),
        ("go version devel +abc123 linux/amd64", None),
        ("", None),
    ],
)
def test_go_version_is_read_from_go_version_output(
    output: str, version: tuple[int, int, int] | None
) -> None:
    assert parse_go_version(output) == version


@pytest.mark.parametrize(
    ("output", "chosen"),
    [
        ("go version go1.26.0 linux/amd64", True),
        ("go version go1.27.3 linux/amd64", True),
        ("go version go1.25.9 linux/amd64", False),
        ("go version go1.19.8 linux/amd64", False),
        ("go version devel +abc123 linux/amd64", False),
    ],
)
def test_the_go_on_path_is_used_only_when_new_enough(output: str, chosen: bool) -> None:
    found = path_go_if_new_enough(
        (1, 26, 0), find=lambda: "/opt/go/bin/go", version_of=lambda _: output
    )
    assert found == (Path("/opt/go/bin/go") if chosen else None)


def test_no_installed_go_means_the_pinned_toolchain() -> None:
    def never_asked(_: str) -> str:
        raise AssertionError("no go to ask")

    assert path_go_if_new_enough((1, 26, 0), find=lambda: None, version_of=never_asked) is None


def test_helm_needs_no_newer_go_than_the_pinned_toolchain() -> None:
    assert HELM_MIN_GO <= GO_VERSION


def test_a_minimum_above_the_pinned_toolchain_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="newer than the pinned"):
        go_binary(tmp_path, (GO_VERSION[0], GO_VERSION[1] + 1, 0))


def _module_zip(path: Path, prefix: str, files: dict[str, tuple[str, int]]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, (text, mode) in files.items():
            info = zipfile.ZipInfo(prefix + name)
            info.external_attr = mode << 16
            archive.writestr(info, text)
    return path


def test_the_zip_hash_is_the_one_go_writes_into_go_sum(tmp_path: Path) -> None:
    zip_path = _module_zip(
        tmp_path / "m.zip",
        "example.com/m@v1.0.0/",
        {
            "go.mod": ("module example.com/m\n", 0o644),
            "b/run.sh": ("#!/bin/sh\necho hi\n", 0o755),
            "a.go": ("package m\n", 0o644),
        },
    )
    # `go mod download -json example.com/m@v1.0.0` from a file:// GOPROXY holding this zip says so.
    assert zip_hash1(zip_path) == "h1:pPcbFTw4bU7EL6U1bDyRV3qptGq19MzkDLsRJdfdQbo="


def _fake_proxy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, expected_sum: str | None) -> None:
    """download() copies a small toolchain-shaped zip instead of reaching the proxy."""
    version = go_toolchain.toolchain_module_version(GO_VERSION, "linux-amd64")
    source = _module_zip(
        tmp_path / "toolchain.zip",
        f"golang.org/toolchain@{version}/",
        {"bin/go": ("#!/bin/sh\necho go\n", 0o755), "VERSION": ("go1.26.8\n", 0o644)},
    )
    monkeypatch.setattr(go_toolchain, "platform_name", lambda: "linux-amd64")
    monkeypatch.setattr(
        go_toolchain, "download", lambda url, target, label: target.write_bytes(source.read_bytes())
    )
    monkeypatch.setitem(
        go_toolchain.TOOLCHAIN_SUMS, "linux-amd64", expected_sum or zip_hash1(source)
    )


def test_a_fetched_toolchain_is_unpacked_with_its_executable_bits(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_proxy(monkeypatch, tmp_path, expected_sum=None)
    go = fetch_toolchain(tmp_path / "tools")
    assert go == tmp_path / "tools" / "go1.26.8.linux-amd64" / "bin" / "go"
    assert go.stat().st_mode & stat.S_IXUSR
    assert (go.parent.parent / "VERSION").read_text() == "go1.26.8\n"
    # A second call finds it and downloads nothing.
    monkeypatch.setattr(go_toolchain, "download", None)
    assert fetch_toolchain(tmp_path / "tools") == go


def test_a_toolchain_with_the_wrong_checksum_is_not_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_proxy(monkeypatch, tmp_path, expected_sum="h1:AAAA")
    with pytest.raises(RuntimeError, match="checksum"):
        fetch_toolchain(tmp_path / "tools")
    assert list((tmp_path / "tools").iterdir()) == []


def test_a_zip_path_leaving_the_target_is_refused(tmp_path: Path) -> None:
    zip_path = _module_zip(tmp_path / "bad.zip", "p/", {"../escape": ("x", 0o644)})
    with pytest.raises(RuntimeError, match="unexpected path"):
        go_toolchain.unpack(zip_path, "p/", tmp_path / "out")


def test_a_go_off_path_where_the_go_installer_puts_it_is_found(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    installer_bin = tmp_path / "usr-local-go-bin"
    installer_bin.mkdir()
    (installer_bin / "go").write_text("#!/bin/sh\n")
    (installer_bin / "go").chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(go_toolchain, "INSTALLER_BIN", str(installer_bin))
    assert go_toolchain.installed_go() == str(installer_bin / "go")
    monkeypatch.setattr(go_toolchain, "INSTALLER_BIN", str(tmp_path / "none"))
    assert go_toolchain.installed_go() is None
