"""How much CPU a process tree uses, read from /proc (Linux), to tell whether work really stopped.

A snapshot names the tree's processes (a root and its descendants) with the CPU time each has
used; the CPU a set of processes burned between two snapshots counts only processes present in
both, so a process that ended (its work stopped) adds nothing, and one started since (a
replacement warming up) is not the work being watched."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
# Below this share of a core a tree is idle: its processes only poll and wait. A pipeline that
# runs gets more than that even on a crowded machine.
IDLE_CORES = 0.1


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds used) of a live process, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    state, parent = fields[0], int(fields[1])
    if state == "Z":  # ended, not yet reaped: it uses no CPU
        return None
    return parent, (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND


@dataclass(frozen=True)
class TreeSnapshot:
    at: float
    cpu_seconds: dict[int, float]
    """CPU seconds used so far by each live process of the tree, by pid."""


def snapshot(root: int) -> TreeSnapshot:
    """The tree of `root` now: it and every live descendant."""
    stats = {
        int(entry.name): stat
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None
    }
    tree = {root} if root in stats else set()
    grew = True
    while grew:
        children = {pid for pid, (parent, _) in stats.items() if parent in tree} - tree
        tree |= children
        grew = bool(children)
    return TreeSnapshot(time.monotonic(), {pid: stats[pid][1] for pid in tree})


def busy_cores(before: TreeSnapshot, after: TreeSnapshot) -> float:
    """The cores the processes of `before` kept busy until `after` (1.0: one core all along)."""
    used = sum(
        after.cpu_seconds[pid] - cpu
        for pid, cpu in before.cpu_seconds.items()
        if pid in after.cpu_seconds
    )
    return used / max(after.at - before.at, 1e-3)


def busy_cores_over(root: int, seconds: float) -> float:
    """The cores `root`'s tree keeps busy over the next `seconds` (a measurement, not a wait)."""
    before = snapshot(root)
    time.sleep(seconds)
    return busy_cores(before, snapshot(root))


def wait_until_idle(
    root: int, *, within: float, window: float = 0.5, idle_below: float = IDLE_CORES
) -> float:
    """Waits until the processes of `root`'s tree as it is now keep less than `idle_below` of a
    core busy over `window` seconds; returns how long that took. Raises if they do not within
    `within` seconds (the time it takes is measured, not slept: windows end as soon as idle)."""
    started = time.monotonic()
    first = snapshot(root)
    watched = set(first.cpu_seconds)  # the work there is now is what must stop
    previous = first
    while True:
        time.sleep(window)
        now = snapshot(root)
        current = TreeSnapshot(
            now.at, {pid: cpu for pid, cpu in now.cpu_seconds.items() if pid in watched}
        )
        busy = busy_cores(previous, current)
        if busy < idle_below:
            return time.monotonic() - started
        if time.monotonic() - started > within:
            raise AssertionError(
                f"the processes of {root}'s tree still kept {busy:.2f} cores busy {within:g} s on"
            )
        previous = current
