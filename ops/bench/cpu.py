"""CPU time of the stack's roles over the sync: who used the machine's cores.

Per role (a process this benchmark started and all its descendants, as in `rss.py`), the user
and system time its processes spent between `__enter__` and `__exit__`: a process alive at the
start counts from what it had used by then, one forked later from zero. Processes are sampled
every second so that one exiting before the end still counts up to its last sample. Besides
the roles: PostgreSQL (every `postgres` process: the server is shared, so another database's
work counts too), the benchmark's own process (the load generator), and the whole machine
(`/proc/stat`, everything that ran, other users' work included).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scimflow.ops.bench.rss import PROC, children_by_parent, tree

TICKS = os.sysconf("SC_CLK_TCK")
POSTGRES = "postgres"
BENCH = "bench"


@dataclass
class _Seen:
    role: str
    started: int
    last: int


@dataclass
class CpuMeter:
    roots: Callable[[], dict[str, int]]
    interval: float = 1.0
    seen: dict[int, _Seen] = field(default_factory=dict)
    _first: bool = True
    _machine_start: tuple[int, int] = (0, 0)
    _machine_end: tuple[int, int] = (0, 0)
    _wall: tuple[float, float] = (0.0, 0.0)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> CpuMeter:
        self._machine_start = machine_ticks()
        self._wall = (time.monotonic(), 0.0)
        self.sample()
        self._first = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()
        self._machine_end = machine_ticks()
        self._wall = (self._wall[0], time.monotonic())

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        for pid, role in self._roles_by_pid().items():
            ticks = process_ticks(pid)
            if ticks is None:
                continue
            seen = self.seen.get(pid)
            if seen is None:
                # Alive at the start: only what it uses from now on counts.
                self.seen[pid] = _Seen(role, ticks if self._first else 0, ticks)
            else:
                seen.last = ticks

    def _roles_by_pid(self) -> dict[int, str]:
        children = children_by_parent()
        roles = {pid: role for role, root in self.roots().items()
                 for pid in tree(root, children)}
        roles[os.getpid()] = BENCH
        for pid in postgres_pids():
            roles.setdefault(pid, POSTGRES)
        return roles

    def summary(self) -> dict[str, Any]:
        wall = self._wall[1] - self._wall[0]
        per_role: dict[str, int] = {}
        for seen in self.seen.values():
            per_role[seen.role] = per_role.get(seen.role, 0) + seen.last - seen.started
        busy = self._machine_end[0] - self._machine_start[0]
        return {
            "seconds": round(wall, 1),
            "machine_cores_busy": round(busy / TICKS / wall, 2) if wall else None,
            "roles": {role: {"cpu_s": round(ticks / TICKS, 1),
                             "cores": round(ticks / TICKS / wall, 2) if wall else None}
                      for role, ticks in sorted(per_role.items(), key=lambda kv: -kv[1])},
        }


def process_ticks(pid: int) -> int | None:
    """utime + stime of one process, in clock ticks (None: it is gone)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)


def postgres_pids() -> list[int]:
    pids = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().startswith(POSTGRES):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def machine_ticks() -> tuple[int, int]:
    """(busy, total) ticks of all CPUs since boot, from /proc/stat."""
    values = [int(v) for v in (PROC / "stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle and iowait
    return sum(values) - idle, sum(values)
