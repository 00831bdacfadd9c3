"""A one-node Slurm on this machine for tests, from Debian's packages (slurm-wlm, munge):
munged on a socket of its own, slurmctld -D and slurmd -D with a slurm.conf written into a
temporary directory, every port chosen free, everything on 127.0.0.1. Clients (sbatch,
squeue, scontrol, scancel) find it through the SLURM_CONF variable of ``env``.
No accounting (sacct needs slurmdbd): a job's state comes from ``scontrol show job``,
kept for MinJobAge seconds after it ends."""

from __future__ import annotations

import getpass
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from local_ray import free_port

SLURMCTLD = shutil.which("slurmctld") or "/usr/sbin/slurmctld"
SLURMD = shutil.which("slurmd") or "/usr/sbin/slurmd"
MUNGED = shutil.which("munged") or "/usr/sbin/munged"
ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY",
         "BOOT_FAIL", "DEADLINE"}


def missing() -> str | None:
    """Why this machine cannot run the test cluster, or None."""
    for path in (SLURMCTLD, SLURMD, MUNGED):
        if not os.path.exists(path):
            return f"{path} is not installed (apt-get install slurm-wlm munge)"
    if shutil.which("sbatch") is None:
        return "sbatch is not installed (apt-get install slurm-wlm)"
    return None


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024 // 2        # half the machine: slurmd checks it has that much
    return 1024


class SlurmCluster:
    """munged, slurmctld and slurmd, each in its own process group, stopped by ``stop``."""

    def __init__(self, root: Path, cpus: int = 2, nodes: int = 1):
        """``nodes`` > 1: that many slurmd on this machine (Debian builds Slurm with multiple-slurmd),
        named n1, n2, ... each with its own port; one node is named localhost."""
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        for name in ("state", "spool", "munge"):
            (root / name).mkdir(exist_ok=True)
        os.chmod(root / "munge", 0o700)
        user = getpass.getuser()
        self.munge_socket = root / "munge" / "munge.socket"
        key = root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        self.names = ["localhost"] if nodes == 1 else [f"n{i + 1}" for i in range(nodes)]
        memory = _memory_mb() // nodes
        nodes_conf = "\n".join(f"NodeName={name} NodeHostname=localhost NodeAddr=127.0.0.1 Port={free_port()} "
                                f"CPUs={cpus} RealMemory={memory} State=UNKNOWN" for name in self.names)
        self.conf = root / "slurm.conf"
        self.conf.write_text(f"""\
ClusterName=aftest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={free_port()}
SlurmUser={user}
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
StateSaveLocation={root / 'state'}
SlurmdSpoolDir={root / 'spool'}/%n
SlurmctldPidFile={root / 'slurmctld.pid'}
SlurmdPidFile={root / 'slurmd-%n.pid'}
SlurmctldLogFile={root / 'slurmctld.log'}
SlurmdLogFile={root / 'slurmd-%n.log'}
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobRequeue=1
ReturnToService=2
MinJobAge=3600
KillWait=30
InactiveLimit=0
SchedulerType=sched/backfill
{nodes_conf}
PartitionName=test Nodes={','.join(self.names)} Default=YES MaxTime=INFINITE State=UP
""")
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self._processes: list[subprocess.Popen] = []
        try:
            self._start([MUNGED, "--foreground", "--force", f"--socket={self.munge_socket}", f"--key-file={key}",
                         f"--log-file={root / 'munge' / 'munged.log'}", f"--pid-file={root / 'munge' / 'munged.pid'}",
                         f"--seed-file={root / 'munge' / 'munged.seed'}"], "munged.out")
            self._wait(lambda: self.munge_socket.exists(), 20, "munged did not start")
            self._start([SLURMCTLD, "-D", "-i", "-f", str(self.conf)], "slurmctld.out")
            for name in self.names:
                (root / "spool" / name).mkdir()
                self._start([SLURMD, "-D", "-N", name, "-f", str(self.conf)], f"slurmd-{name}.out")
            self._wait(self._nodes_idle, 60, "the nodes did not become idle")
        except BaseException:
            self.stop()
            raise

    def _start(self, command: list[str], log: str) -> None:
        self._processes.append(subprocess.Popen(command, env=self.env, stdout=(self.root / log).open("w"),
                                                stderr=subprocess.STDOUT, start_new_session=True))

    def _wait(self, predicate, timeout_s: float, what: str):
        deadline = time.time() + timeout_s
        while True:
            value = predicate()
            if value:
                return value
            if time.time() > deadline:
                raise AssertionError(f"{what}\n{self.logs()}")
            time.sleep(0.5)

    def logs(self) -> str:
        parts = []
        for path in [self.root / "munged.out", self.root / "slurmctld.log", self.root / "slurmctld.out",
                     *sorted(self.root.glob("slurmd-*"))]:
            if path.exists():
                name = path.name
                parts.append(f"--- {name}\n" + path.read_text(errors="replace")[-1500:])
        return "\n".join(parts)

    def _nodes_idle(self) -> bool:
        shown = subprocess.run(["scontrol", "show", "node", "-o"], env=self.env, capture_output=True, text=True)
        return shown.returncode == 0 and len(re.findall(r"State=IDLE\b", shown.stdout)) == len(self.names)

    def client(self, *command: str, check: bool = True) -> str:
        done = subprocess.run(list(command), env=self.env, capture_output=True, text=True, timeout=60)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(command)}: {done.returncode}\n{done.stdout}{done.stderr}")
        return done.stdout

    def sbatch(self, *arguments: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(["sbatch", "--parsable", *arguments], env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise AssertionError(f"sbatch: {done.returncode}\n{done.stdout}{done.stderr}")
        return done.stdout.strip().split(";")[0]

    def job(self, job_id: str) -> dict[str, str]:
        """The fields of ``scontrol show job`` (JobState, Restarts, ExitCode, StdOut ...)."""
        shown = self.client("scontrol", "show", "job", job_id, "-o")
        fields = {}
        for item in shown.split():
            key, _, value = item.partition("=")
            fields[key] = value
        return fields

    def wait_ended(self, job_id: str, timeout_s: float) -> dict[str, str]:
        return self._wait(lambda: (lambda f: f if f.get("JobState") in ENDED else None)(self.job(job_id)),
                          timeout_s, f"job {job_id} did not end: {self.job(job_id)}")

    def stop(self) -> None:
        for process in reversed(self._processes):
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
