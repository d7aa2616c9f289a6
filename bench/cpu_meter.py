"""CPU seconds spent by the benched processes and by the whole machine, read from /proc.

Wall-clock figures on a shared 2-core machine measure how much CPU was left to the run as much as
the code; CPU seconds per unit of work do not depend on what else ran (much less, at least), and the
machine's own total tells how busy it was meanwhile."""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (its threads included), 0 once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def machine_busy_s() -> float:
    """CPU seconds all cores ran something since boot: user, nice, system, irq and softirq time
    (not idle, iowait, or steal: time the hypervisor gave to other machines)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()  # "cpu  user nice ..."
    user, nice, system, irq, softirq = (int(fields[i]) for i in (1, 2, 3, 6, 7))
    return (user + nice + system + irq + softirq) / _TICKS


def machine_steal_s() -> float:
    """CPU seconds the hypervisor gave to other machines since boot (all cores): time this one
    wanted and did not get, which a latency figure feels and ``machine_busy_s`` does not show."""
    return int(Path("/proc/stat").read_text().split("\n", 1)[0].split()[8]) / _TICKS


class CpuMeter:
    """Snapshots of the processes' and the machine's CPU seconds, relative to :meth:`start`."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._base: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        now = {name: process_cpu_s(pid) for name, pid in self.pids.items()}
        now["machine"] = machine_busy_s()
        return now

    def start(self) -> None:
        self._base = self._now()

    def snapshot(self) -> dict[str, float]:
        """CPU seconds since start: per process, ``services`` (their sum), ``machine`` (every
        process on every core) and ``others`` (the machine less the services: Kafka, PostgreSQL,
        the sink, the bench itself and whatever else ran)."""
        now = self._now()
        spent = {name: round(now[name] - self._base.get(name, 0.0), 2) for name in now}
        spent["services"] = round(sum(spent[name] for name in self.pids), 2)
        spent["others"] = round(spent["machine"] - spent["services"], 2)
        return spent
