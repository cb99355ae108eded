"""Resident memory of the stack's processes: VmRSS of every process in each role's tree.

A role is a process this benchmark started (the API server's master, the Celery worker's
main process) together with all of its descendants, found anew at every sample so that
worker processes forked or replaced during the run are counted. Per process, the peak is
kept; per role, the peak of the sum over its processes at one sample. The sum counts pages
shared after a fork once per process, so it is an upper bound of the role's real footprint.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROC = Path("/proc")


@dataclass
class ProcessPeak:
    role: str
    pid: int
    name: str
    peak_kib: int = 0


@dataclass
class RssSampler:
    """Samples every `interval` seconds, from `__enter__` to `__exit__`, the roles that
    `roots()` names at that moment (role -> pid of the tree's root)."""

    roots: Callable[[], dict[str, int]]
    interval: float = 1.0
    processes: dict[int, ProcessPeak] = field(default_factory=dict)
    role_peak_kib: dict[str, int] = field(default_factory=dict)
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        # Once more at the end: a run shorter than the interval would otherwise be seen only
        # at its start, before the worker pool's processes were forked.
        self.sample()

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.interval):
                return

    def sample(self) -> None:
        children = children_by_parent()
        for role, root in self.roots().items():
            total = 0
            for pid in tree(root, children):
                rss = vm_rss_kib(pid)
                if rss is None:
                    continue  # it exited between the listing and the read
                peak = self.processes.setdefault(pid, ProcessPeak(role, pid, _name(pid)))
                peak.peak_kib = max(peak.peak_kib, rss)
                total += rss
            self.role_peak_kib[role] = max(self.role_peak_kib.get(role, 0), total)
        self.samples += 1

    def summary(self) -> dict[str, Any]:
        roles = {}
        for role, total in self.role_peak_kib.items():
            members = [p for p in self.processes.values() if p.role == role]
            roles[role] = {"peak_total_mib": _mib(total),
                           "peak_process_mib": _mib(max((p.peak_kib for p in members), default=0)),
                           "processes": len(members)}
        return {"samples": self.samples, "interval_s": self.interval, "roles": roles,
                "processes": [{"role": p.role, "pid": p.pid, "name": p.name,
                               "peak_mib": _mib(p.peak_kib)}
                              for p in sorted(self.processes.values(),
                                              key=lambda p: (p.role, p.pid))]}


def vm_rss_kib(pid: int) -> int | None:
    try:
        status = (PROC / str(pid) / "status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0  # a zombie has no VmRSS line


def children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: parse after the last ')'.
        parent = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    return children


def tree(root: int, children: dict[int, list[int]]) -> list[int]:
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(children.get(pid, []))
    return found


def _name(pid: int) -> str:
    try:
        return (PROC / str(pid) / "comm").read_text().strip()
    except OSError:
        return "?"


def _mib(kib: int) -> float:
    return round(kib / 1024, 1)
