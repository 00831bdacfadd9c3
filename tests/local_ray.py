"""A Ray node started with ``ray start --block`` on this machine, for tests of real
clusters (loopback only): its processes in one group, killed as a whole."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAY = Path(sys.executable).with_name("ray")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def descendants(root: int) -> set[int]:
    """``root`` and every process below it (Linux /proc): Ray's workers leave the node's process group."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue
        parents[int(entry.name)] = int(stat[stat.rfind(")") + 2:].split()[1])
    found, added = {root}, True
    while added:
        below = {pid for pid, parent in parents.items() if parent in found} - found
        found |= below
        added = bool(below)
    return found


class LocalNode:
    """One ``ray start --block`` node: its processes (raylet, agents) share its process group;
    the workers the raylet starts (trials) get groups of their own but stay its descendants."""

    def __init__(self, arguments: list[str], env: dict[str, str], log: Path):
        self.temp_dir = tempfile.mkdtemp(prefix="af-ray-", dir="/tmp")   # short: Ray's socket paths
        # the ports two nodes of one machine would otherwise both take
        ports = [f"--{name}={free_port()}" for name in ("dashboard-agent-listen-port", "dashboard-agent-grpc-port",
                                                           "metrics-export-port", "runtime-env-agent-port")]
        self.process = subprocess.Popen(
            [str(RAY), "start", "--block", "--num-cpus=1", "--num-gpus=0", "--node-ip-address=127.0.0.1",
             f"--temp-dir={self.temp_dir}", *ports, *arguments],
            env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
        self._pids: set[int] = set()

    def owns(self, pid: int) -> bool:
        return pid in descendants(self.process.pid)

    def alive(self) -> bool:
        return any(_running(pid) for pid in self._pids)

    def kill(self) -> None:
        """The whole node at once, as if its machine went away."""
        # stopped first, the raylet starts no worker between the listing and the kill
        _signal(-self.process.pid, signal.SIGSTOP)
        self._pids = descendants(self.process.pid)
        for pid in self._pids:
            _signal(pid, signal.SIGKILL)
        self.process.wait()
        deadline = time.time() + 10
        while self.alive():
            assert time.time() < deadline, "the killed node's processes did not die"
            time.sleep(0.05)

    def stop(self) -> None:
        """Gone, with its temporary directory: the test's cluster holds nothing worth a graceful stop."""
        self.kill()
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _running(pid: int) -> bool:
    """Alive and not a zombie (a killed worker's parent may be gone, and nobody reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"
