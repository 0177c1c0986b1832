"""A single-node SLURM cluster on this machine, for trying ``--profile profiles/slurm`` and for the test of it.

    python -m tests.slurm_cluster start [--dir /tmp/wsss-slurm] [--gpus 2]   # prints the SLURM_CONF to export
    python -m tests.slurm_cluster stop  [--dir /tmp/wsss-slurm]

Needs root (slurmd runs jobs as their user) and Debian's ``slurmctld slurmd munge slurm-client`` (installed with
apt-get when missing). Everything lives in one folder: ``slurm.conf`` (the node from ``slurmd -C``), ``gres.conf``,
a private munged (its own key and socket, ``AuthInfo=socket=``), state, spool, pid files and logs; the daemons
listen on free ports and are stopped by the pids in their pid files. Clients find the cluster through
``SLURM_CONF=<folder>/slurm.conf``.

Two things reach outside the folder:

* ``/etc/slurm/slurm.conf``: the executor plugin's job step runs ``srun`` with every ``SLURM_*`` variable
  removed, ``SLURM_CONF`` included, so that ``srun`` reads the default path. It is made a link to the private
  ``slurm.conf`` when there is no file there, and removed by ``stop`` when it still is that link; when another
  ``slurm.conf`` is there, :func:`unavailable_reason` says so and nothing starts.
* the GPUs are counted, not real: the node has ``Gres=gpu:<n>`` whose device files are character devices
  made in the folder (/dev/null's numbers), so that GPU requests (``--gpus``) are scheduled and give jobs
  ``SLURM_GPUS_ON_NODE`` (and ``CUDA_VISIBLE_DEVICES``) on a machine without GPUs.

No accounting daemon: ``sacct`` does not work, job states come from ``squeue`` (``MinJobAge`` keeps finished
jobs listed for a day).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "munge", "slurm-client")
PROGRAMS = ("slurmctld", "slurmd", "slurmstepd", "munged", "sbatch", "srun", "squeue", "sinfo", "scontrol")
DEFAULT_DIR = Path("/tmp/wsss-slurm")
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
NODE = "localhost"
PARTITION = "debug"
ACTIVE_STATES = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED")


def missing_programs() -> list[str]:
    return [name for name in PROGRAMS if shutil.which(name) is None and not Path("/usr/sbin", name).exists()]


def install_packages() -> str | None:
    """apt-get install the packages when a program is missing; None when done, else why not."""
    if not missing_programs():
        return None
    if os.geteuid() != 0:
        return f"SLURM is not installed ({', '.join(missing_programs())} missing) and installing needs root"
    if shutil.which("apt-get") is None:
        return f"SLURM is not installed ({', '.join(missing_programs())} missing) and there is no apt-get"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *PACKAGES]):
        run = subprocess.run(command, env=env, capture_output=True, text=True)
        if run.returncode != 0:
            return f"`{' '.join(command)}` failed: {(run.stderr or run.stdout).strip()[-500:]}"
    return None if not missing_programs() else f"still missing after apt-get: {', '.join(missing_programs())}"


def unavailable_reason() -> str | None:
    """Why the cluster cannot start here (None: it can; the packages are installed when missing)."""
    if sys.platform != "linux":
        return "a SLURM test cluster needs Linux"
    if os.geteuid() != 0:
        return "starting slurmd needs root"
    if SYSTEM_CONF.exists() and not SYSTEM_CONF.is_symlink():
        return f"{SYSTEM_CONF} exists: a SLURM installation is configured on this machine, not starting another"
    return install_packages()


def _program(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def node_hardware() -> dict[str, int]:
    """CPUs and RealMemory (MB) as ``slurmd -C`` measures them."""
    out = subprocess.run([_program("slurmd"), "-C"], capture_output=True, text=True, check=True).stdout
    fields = dict(part.split("=", 1) for part in out.split() if "=" in part)
    return {"CPUs": int(fields["CPUs"]), "RealMemory": int(fields["RealMemory"])}


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _pid_of(pid_file: Path, program: str, marker: str) -> int | None:
    """The pid in ``pid_file`` if that process runs and is ``program`` started with ``marker`` (our folder) on
    its command line: a stale file whose pid now belongs to another process gives None."""
    try:
        pid = int(pid_file.read_text().split()[0])
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, ValueError, IndexError):
        return None
    return pid if _alive(pid) and program in command and marker in command else None


class SlurmCluster:
    """The cluster in ``root`` (see the module docstring); ``gpus``: counted GPUs of the node."""

    def __init__(self, root: Path = DEFAULT_DIR, gpus: int = 2):
        self.root = Path(root).resolve()
        self.gpus = gpus
        self.conf = self.root / "slurm.conf"
        self.munge = self.root / "munge"

    # ------------------------------------------------------------------ files
    @property
    def pid_files(self) -> dict[str, Path]:
        return {"slurmd": self.root / "slurmd.pid", "slurmctld": self.root / "slurmctld.pid",
                "munged": self.munge / "munged.pid"}

    @property
    def env(self) -> dict[str, str]:
        """What a client (sbatch, squeue, snakemake) needs in its environment."""
        return {"SLURM_CONF": str(self.conf)}

    def client_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def _write_munge_key(self) -> None:
        self.munge.mkdir(parents=True, exist_ok=True)
        os.chmod(self.munge, 0o700)
        key = self.munge / "munge.key"
        if not key.exists():  # a key of our own: the system's munged (if any) is not involved
            fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(os.urandom(1024))

    @property
    def hardware(self) -> dict[str, int]:
        """The node's CPUs and RealMemory (MB), as in ``slurm.conf``."""
        return node_hardware()

    def write_config(self) -> None:
        """``slurm.conf`` and ``gres.conf`` for this machine, on free ports (rewritten at each start)."""
        hardware = self.hardware
        for sub in ("state", "spool"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        controller_port, node_port = _free_ports(2)
        cpus, memory = hardware["CPUs"], hardware["RealMemory"]
        gres = f" Gres=gpu:{self.gpus}" if self.gpus else ""
        lines = [
            "# written by tests/slurm_cluster.py: a one-node test cluster",
            "ClusterName=wsss",
            f"SlurmctldHost={NODE}",
            f"SlurmctldPort={controller_port}",
            f"SlurmdPort={node_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge / 'munge.socket'}",
            f"StateSaveLocation={self.root / 'state'}",
            f"SlurmdSpoolDir={self.root / 'spool'}",
            f"SlurmctldPidFile={self.pid_files['slurmctld']}",
            f"SlurmdPidFile={self.pid_files['slurmd']}",
            f"SlurmctldLogFile={self.root / 'slurmctld.log'}",
            f"SlurmdLogFile={self.root / 'slurmd.log'}",
            # no cgroups in a container: processes tracked through /proc, no task binding
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "MpiDefault=none",
            "SwitchType=switch/none",
            "SchedulerType=sched/backfill",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            # a job without a memory request takes this per CPU, not the whole node
            f"DefMemPerCPU={max(100, memory // cpus // 2)}",
            # finished jobs stay in squeue a day: the executor's status command is squeue (no accounting)
            "MinJobAge=86400",
            "ReturnToService=2",
            "SlurmctldTimeout=30",
            "SlurmdTimeout=60",
            "InactiveLimit=0",
            "KillWait=5",
            "Waittime=0",
            *(["GresTypes=gpu"] if self.gpus else []),
            f"NodeName={NODE} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory}{gres} State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")
        (self.root / "gres.conf").write_text(f"Name=gpu File={self._fake_gpus()}\n" if self.gpus else "")

    def _fake_gpus(self) -> str:
        """``<folder>/dev/gpu[0-n]``: slurmd counts GPUs by their device files (it drops file-less ones) and wants
        character devices; these are /dev/null's (1, 3), which nothing opens."""
        dev = self.root / "dev"
        dev.mkdir(exist_ok=True)
        for index in range(self.gpus):
            device = dev / f"gpu{index}"
            if not device.exists():
                os.mknod(device, 0o644 | stat.S_IFCHR, os.makedev(1, 3))
        return f"{dev}/gpu[0-{self.gpus - 1}]" if self.gpus > 1 else f"{dev}/gpu0"

    # ------------------------------------------------------------------ daemons
    def _pid(self, name: str) -> int | None:
        marker = str(self.munge) if name == "munged" else str(self.conf)
        return _pid_of(self.pid_files[name], name, marker)

    def running(self) -> dict[str, int]:
        """The daemons of this folder that are alive, by their pid files."""
        return {name: pid for name in self.pid_files if (pid := self._pid(name)) is not None}

    def ready(self) -> bool:
        """Whether ``sinfo`` shows the node idle (or running jobs: mixed, allocated)."""
        try:
            run = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], env=self.client_env(), capture_output=True,
                                 text=True, timeout=10)
        except subprocess.TimeoutExpired:
            return False
        states = run.stdout.split()
        return run.returncode == 0 and bool(states) and all(s.rstrip("*") in ("idle", "mixed", "allocated")
                                                            for s in states)

    def _link_system_conf(self) -> None:
        if SYSTEM_CONF.is_symlink() and SYSTEM_CONF.resolve() != self.conf:
            SYSTEM_CONF.unlink()  # a dangling or stale link of an earlier test cluster
        if not SYSTEM_CONF.exists() and not SYSTEM_CONF.is_symlink():
            SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
            SYSTEM_CONF.symlink_to(self.conf)

    def _unlink_system_conf(self) -> None:
        if SYSTEM_CONF.is_symlink() and Path(os.readlink(SYSTEM_CONF)) == self.conf:
            SYSTEM_CONF.unlink()

    def start(self, timeout: float = 60) -> "SlurmCluster":
        """Start munged, slurmctld and slurmd (those not already running) and wait until the node is idle."""
        reason = unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        alive = self.running()
        if len(alive) == len(self.pid_files) and self.ready():
            self._link_system_conf()
            return self
        self.stop()  # a part of it: start afresh
        self.root.mkdir(parents=True, exist_ok=True)
        self._write_munge_key()
        self.write_config()
        self._link_system_conf()
        munge = self.munge
        commands = {
            "munged": [_program("munged"), "--force", f"--socket={munge / 'munge.socket'}",
                       f"--key-file={munge / 'munge.key'}", f"--pid-file={munge / 'munged.pid'}",
                       f"--log-file={munge / 'munged.log'}", f"--seed-file={munge / 'munged.seed'}"],
            # -i: ignore the saved state (jobs of an earlier run); -c: clear the job queue
            "slurmctld": [_program("slurmctld"), "-f", str(self.conf), "-i", "-c"],
            "slurmd": [_program("slurmd"), "-f", str(self.conf), "-N", NODE],
        }
        for name, command in commands.items():
            run = subprocess.run(command, env=self.client_env(), capture_output=True, text=True, timeout=60)
            if run.returncode != 0:
                self.stop()
                raise RuntimeError(f"{name} did not start ({' '.join(command)}): {run.stderr.strip()}"
                                   f"\n{self._log_tail(name)}")
            self._wait(lambda: name in self.running(), 15, f"{name} wrote no pid file")
        self._wait(self.ready, timeout, "the node did not become idle")
        return self

    def _wait(self, condition, timeout: float, message: str) -> None:
        """Poll ``condition`` until true; on timeout, or when a started daemon has died, stop and raise."""
        deadline = time.monotonic() + timeout
        started = set(self.running())
        while not condition():
            dead = started - set(self.running())
            if dead or time.monotonic() > deadline:
                logs = "".join(self._log_tail(name) for name in ("munged", "slurmctld", "slurmd"))
                self.stop()
                raise RuntimeError(f"{message}{f' ({sorted(dead)} died)' if dead else ''}:\n{logs}")
            time.sleep(0.5)

    def _log_tail(self, name: str, chars: int = 2000) -> str:
        log = self.munge / "munged.log" if name == "munged" else self.root / f"{name}.log"
        try:
            return f"--- {log}:\n{log.read_text(errors='replace')[-chars:]}\n"
        except OSError:
            return ""

    def stop(self, timeout: float = 20) -> None:
        """Cancel the jobs still queued or running (their ids from squeue), then SIGTERM to each daemon by its pid
        file (slurmd first), SIGKILL after ``timeout`` s."""
        if len(self.running()) == len(self.pid_files):
            try:
                active = [job["id"] for job in self.jobs() if job["state"] in ACTIVE_STATES]
                if active:
                    subprocess.run(["scancel", *active], env=self.client_env(), capture_output=True, timeout=30)
                    deadline = time.monotonic() + timeout
                    while time.monotonic() < deadline and any(job["state"] in ACTIVE_STATES for job in self.jobs()):
                        time.sleep(0.5)
            except (subprocess.SubprocessError, OSError):
                pass
        for name in ("slurmd", "slurmctld", "munged"):
            pid = self._pid(name)
            if pid is None:
                continue
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _alive(pid) and time.monotonic() < deadline:  # the pid, not the file: slurmd removes it first
                time.sleep(0.2)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        self._unlink_system_conf()

    # ------------------------------------------------------------------ queries
    def jobs(self) -> list[dict[str, str]]:
        """Every job slurmctld knows (finished ones too, MinJobAge): id, name, state, comment."""
        run = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i|%j|%T|%k"], env=self.client_env(),
                             capture_output=True, text=True, check=True)
        return [dict(zip(("id", "name", "state", "comment"), line.split("|", 3)))
                for line in run.stdout.splitlines() if line.strip()]

    def show_job(self, job_id: str) -> str:
        return subprocess.run(["scontrol", "show", "job", job_id], env=self.client_env(), capture_output=True,
                              text=True).stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"the cluster's folder ({DEFAULT_DIR})")
    parser.add_argument("--gpus", type=int, default=2, help="counted GPUs of the node (no devices)")
    args = parser.parse_args(argv)
    cluster = SlurmCluster(args.dir, args.gpus)
    if args.action == "start":
        try:
            cluster.start()
        except RuntimeError as error:
            print(error, file=sys.stderr)
            return 1
        print(f"export SLURM_CONF={cluster.conf}")
    elif args.action == "stop":
        cluster.stop()
    else:
        alive = cluster.running()
        print(f"running: {alive or 'nothing'}; node ready: {bool(alive) and cluster.ready()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
