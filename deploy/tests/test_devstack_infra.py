"""devstack's infrastructure handling: it starts only what is not running, and stops only that, also
when Ctrl-C arrives (the components are stand-in scripts here: no real server is touched)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(DEPLOY))

from devstack import Component, Infra  # noqa: E402  (deploy/ is not a package)

FAKE_SCRIPT = """#!/usr/bin/env bash
# A stand-in for deploy/<component>/<component>.sh: state is a file in $STATE_DIR.
set -euo pipefail
name="$(basename "$0")"
echo "$name $1" >>"$STATE_DIR/calls"
case "$1" in
    status) [[ -f "$STATE_DIR/$name.up" ]] ;;
    start) delay="START_DELAY_$name"
        [[ -f "$STATE_DIR/$name.up" ]] || { sleep "${!delay:-0}"; touch "$STATE_DIR/$name.up"; } ;;
    stop) rm -f "$STATE_DIR/$name.up" ;;
    *) ;;
esac
"""


def _components(tmp_path: Path, *names: str) -> tuple[Component, ...]:
    made = []
    for name in names:
        script = tmp_path / name
        script.write_text(FAKE_SCRIPT)
        script.chmod(0o755)
        made.append(Component(name, script, before_start=("install",)))
    return tuple(made)


def _calls(tmp_path: Path) -> list[str]:
    return (tmp_path / "calls").read_text().splitlines()


def test_stops_only_what_it_started(tmp_path: Path, capsys) -> None:
    components = _components(tmp_path, "pg", "kafka", "smtp")
    (tmp_path / "pg.up").touch()  # running before, like a shared server
    infra = Infra(env={**os.environ, "STATE_DIR": str(tmp_path)}, components=components)

    infra.up()
    assert [c.name for c in infra.started] == ["kafka", "smtp"]
    assert all((tmp_path / f"{n}.up").exists() for n in ("pg", "kafka", "smtp"))

    infra.down()
    stops = [call for call in _calls(tmp_path) if call.endswith(" stop")]
    assert stops == ["smtp stop", "kafka stop"]  # reverse order of starting; pg left alone
    assert (tmp_path / "pg.up").exists()
    out = capsys.readouterr().out
    assert "stopping what this run started: kafka, smtp" in out
    assert "Left running (it was running before this run): pg. `make infra-down` stops it." in out


def test_ctrl_c_during_a_slow_start_still_stops_it(tmp_path: Path) -> None:
    """SIGINT while the second component is still starting: both started ones are stopped."""
    _components(tmp_path, "pg", "kafka")
    program = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(DEPLOY)!r})
        import devstack
        from pathlib import Path
        tmp = Path({str(tmp_path)!r})
        devstack.INFRA = tuple(devstack.Component(n, tmp / n) for n in ("pg", "kafka"))
        def never_reached(stack):
            raise AssertionError("the services must not start after Ctrl-C")
        devstack._serve = never_reached
        sys.exit(devstack.run(None))
        """
    )
    env = {**os.environ, "STATE_DIR": str(tmp_path), "START_DELAY_kafka": "30"}
    # Its own process group, signalled as a whole: what a terminal does with Ctrl-C.
    proc = subprocess.Popen(
        [sys.executable, "-c", program],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        calls = _calls(tmp_path) if (tmp_path / "calls").exists() else []
        if "kafka start" in calls:
            break
        time.sleep(0.05)
    else:
        proc.kill()
        raise AssertionError("kafka start never called")
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    stops = [call for call in _calls(tmp_path) if call.endswith(" stop")]
    assert stops == ["kafka stop", "pg stop"]
    assert "stopping what this run started: pg, kafka" in out
