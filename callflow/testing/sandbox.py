"""A real Asterisk 22 in a cached Debian sid chroot, configured for callflow's tests and demo."""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ASTERISK_DIR = REPO / "asterisk"
TEMPLATES = ASTERISK_DIR / "sandbox"
CHROOT_SCRIPT = REPO / "scripts" / "asterisk-chroot.sh"

_TOKEN = re.compile(r"\{\{([a-z_]+)\}\}")


class SandboxError(RuntimeError):
    """The sandbox could not be built, started or reached; the message says what to do."""


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


@dataclass(frozen=True)
class SandboxConfig:
    """Where the sandbox lives and which loopback addresses and ports it uses."""

    name: str = field(default_factory=lambda: os.environ.get("CALLFLOW_SANDBOX_NAME", "default"))
    cache: Path = field(
        default_factory=lambda: Path(os.environ.get("CALLFLOW_CACHE", "/var/cache/callflow"))
    )
    host: str = "127.0.0.1"
    sip_port: int = field(default_factory=lambda: _env_int("CALLFLOW_SANDBOX_SIP_PORT", 5260))
    ami_port: int = field(default_factory=lambda: _env_int("CALLFLOW_SANDBOX_AMI_PORT", 5248))
    http_port: int = field(default_factory=lambda: _env_int("CALLFLOW_SANDBOX_HTTP_PORT", 8298))
    agi_port: int = field(default_factory=lambda: _env_int("CALLFLOW_SANDBOX_AGI_PORT", 4583))
    peer_port: int = field(default_factory=lambda: _env_int("CALLFLOW_SANDBOX_PEER_PORT", 5270))
    rtp_start: int = field(default_factory=lambda: _env_int("CALLFLOW_SANDBOX_RTP_START", 40000))
    carrier_ip: str = "127.0.0.2"
    pstn_ip: str = "127.0.0.9"
    fallback_ip: str = "127.0.0.10"
    agent_count: int = 8

    @property
    def rtp_end(self) -> int:
        """The last RTP port: 10,000 ports from rtp_start (2 per leg: ~2,500 calls at once)."""
        return self.rtp_start + 9999

    @property
    def rootfs(self) -> Path:
        """The cached chroot."""
        return self.cache / "rootfs"

    @property
    def inner_dir(self) -> str:
        """The sandbox folder as Asterisk sees it, inside the chroot."""
        return f"/var/callflow-sandbox/{self.name}"

    @property
    def dir(self) -> Path:
        """The sandbox folder as the host sees it."""
        return self.rootfs / self.inner_dir.lstrip("/")

    def agent_ip(self, n: int) -> str:
        """The loopback address of agent N (1-based)."""
        return f"127.0.0.{10 + n}"

    def peers(self) -> dict[str, str]:
        """Every SIP peer endpoint name with its loopback address."""
        peers = {"carrier": self.carrier_ip, "pstn-trunk": self.pstn_ip}
        peers["fallback"] = self.fallback_ip
        for n in range(1, self.agent_count + 1):
            peers[f"agent{n}"] = self.agent_ip(n)
        return peers


@dataclass(frozen=True)
class Credentials:
    """The AMI and ARI logins generated for one sandbox."""

    ami_user: str
    ami_secret: str
    ari_user: str
    ari_secret: str


def _agents_pjsip(config: SandboxConfig) -> str:
    blocks = []
    names = ["fallback"] + [f"agent{n}" for n in range(1, config.agent_count + 1)]
    for name in names:
        ip = config.peers()[name]
        blocks.append(
            f"[{name}](peer-defaults)\ncontext = sandbox-from-peers\naors = {name}\n"
            f"[{name}]\ntype = aor\ncontact = sip:{name}@{ip}:{config.peer_port}\n"
            f"[{name}-identify]\ntype = identify\nendpoint = {name}\nmatch = {ip}\n"
        )
    return "\n".join(blocks)


def render(template: str, values: dict[str, str]) -> str:
    """Fill every {{name}} in a template; an unknown name is an error."""

    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise SandboxError(f"template uses unknown value {{{{{key}}}}}")
        return values[key]

    return _TOKEN.sub(sub, template)


class Sandbox:
    """Build, configure, start and stop one sandbox Asterisk."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()

    # -- paths -------------------------------------------------------------------------------
    @property
    def conf(self) -> str:
        """asterisk.conf as Asterisk sees it."""
        return f"{self.config.inner_dir}/etc/asterisk.conf"

    @property
    def log_dir(self) -> Path:
        """Asterisk's log folder (messages.log, cdr-csv/, cel-custom/)."""
        return self.config.dir / "log"

    # -- building ----------------------------------------------------------------------------
    def ensure_chroot(self) -> Path:
        """Return the cached chroot, building it when missing or broken."""
        if os.geteuid() != 0:
            raise SandboxError(
                "the Asterisk sandbox needs root (chroot, mounts): run the tests or "
                "'make sandbox-up' as root"
            )
        env = dict(os.environ, CALLFLOW_CACHE=str(self.config.cache))
        proc = subprocess.run(
            ["bash", str(CHROOT_SCRIPT)], env=env, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise SandboxError(proc.stderr.strip() or "scripts/asterisk-chroot.sh failed")
        return Path(proc.stdout.strip().splitlines()[-1])

    def credentials(self) -> Credentials:
        """The sandbox's AMI/ARI logins, generated once and kept in its folder."""
        path = self.config.dir / "credentials.json"
        if path.exists():
            return Credentials(**json.loads(path.read_text()))
        creds = Credentials("callflow", secrets.token_hex(12), "callflow", secrets.token_hex(12))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(creds.__dict__))
        path.chmod(0o600)
        return creds

    def ami_url(self) -> str:
        """The sandbox's AMI login as a URL (for `callflow serve --ami`)."""
        creds = self.credentials()
        return (
            f"tcp://{creds.ami_user}:{creds.ami_secret}@{self.config.host}:{self.config.ami_port}"
        )

    def write_config(self) -> None:
        """Render the sandbox configuration and the shipped dialplan into the sandbox folder."""
        c = self.config
        etc = c.dir / "etc"
        for sub in (
            "etc",
            "lib",
            "data/sounds/en",
            "agi-bin",
            "spool",
            "run",
            "log/cdr-csv",
            "log/cel-custom",
        ):
            (c.dir / sub).mkdir(parents=True, exist_ok=True)
        creds = self.credentials()
        values = {
            "dir": c.inner_dir,
            "host": c.host,
            "sip_port": str(c.sip_port),
            "ami_port": str(c.ami_port),
            "http_port": str(c.http_port),
            "agi_port": str(c.agi_port),
            "peer_port": str(c.peer_port),
            "rtp_start": str(c.rtp_start),
            "rtp_end": str(c.rtp_end),
            "carrier_ip": c.carrier_ip,
            "pstn_ip": c.pstn_ip,
            "agents": _agents_pjsip(c),
            "ami_user": creds.ami_user,
            "ami_secret": creds.ami_secret,
            "ari_user": creds.ari_user,
            "ari_secret": creds.ari_secret,
        }
        for template in sorted(TEMPLATES.glob("*.conf")):
            (etc / template.name).write_text(render(template.read_text(), values))
        shutil.copyfile(ASTERISK_DIR / "extensions_callflow.conf", etc / "extensions_callflow.conf")
        self._link_data()
        self._write_prompts()

    def _link_data(self) -> None:
        """Link the packaged data (XML docs, ARI specs) into the sandbox's own data folder."""
        data = self.config.dir / "data"
        for entry in (self.config.rootfs / "usr/share/asterisk").iterdir():
            link = data / entry.name
            if entry.name != "sounds" and not link.is_symlink():
                link.symlink_to(f"/usr/share/asterisk/{entry.name}")

    def _write_prompts(self) -> None:
        """Write the short prompts the tests play: a 200 ms beep and a second of silence."""
        sounds = self.config.dir / "data" / "sounds" / "en"
        rate = 8000
        beep = b"".join(
            int(8000 * math.sin(2 * math.pi * 1000 * i / rate)).to_bytes(2, "little", signed=True)
            for i in range(rate // 5)
        )
        (sounds / "callflow-beep.sln").write_bytes(beep)
        (sounds / "callflow-silence.sln").write_bytes(b"\x00\x00" * rate)
        # What app_voicemail plays before it records (the packaged prompts are not installed).
        (sounds / "vm-intro.sln").write_bytes(b"\x00\x00" * (rate // 5))
        (sounds / "beep.sln").write_bytes(beep)

    def voicemail_box(self, box: str, context: str = "default") -> Path:
        """A voicemail box's folder in the spool (voicemail.conf), with its greeting recorded."""
        folder = self.config.dir / "spool" / "voicemail" / context / box
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "unavail.sln").write_bytes(b"\x00\x00" * 4000)  # half a second
        return folder

    # -- running -----------------------------------------------------------------------------
    def _chroot(self, *args: str) -> list[str]:
        return ["chroot", str(self.config.rootfs), *args]

    def _mount_proc(self) -> None:
        proc = self.config.rootfs / "proc"
        if not os.path.ismount(proc):
            subprocess.run(["mount", "-t", "proc", "proc", str(proc)], check=True)

    def _umount_proc(self) -> None:
        """Unmount the chroot's /proc unless another sandbox still runs in this chroot."""
        proc = self.config.rootfs / "proc"
        if os.path.ismount(proc) and not _processes_in(self.config.rootfs):
            subprocess.run(["umount", "-l", str(proc)], check=False)

    def rx(self, command: str, timeout: float = 10.0) -> str:
        """Run one Asterisk CLI command and return its output."""
        proc = subprocess.run(
            self._chroot("/usr/sbin/asterisk", "-C", self.conf, "-rx", command),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            raise SandboxError(f"asterisk -rx {command!r} failed: {proc.stderr.strip()}")
        return proc.stdout

    def is_running(self) -> bool:
        """Whether this sandbox's Asterisk answers on its control socket."""
        ctl = self.config.dir / "run" / "asterisk.ctl"
        if not ctl.exists():
            return False
        try:
            self.rx("core show version", timeout=5)
        except (SandboxError, subprocess.TimeoutExpired):
            return False
        return True

    def start(self, timeout: float = 30.0) -> None:
        """Start Asterisk (configured afresh) and wait until it has fully booted."""
        self.ensure_chroot()
        if self.is_running():
            self.stop()
        self.write_config()
        self._mount_proc()
        log = self.log_dir / "messages.log"
        if log.exists():
            log.rename(log.with_suffix(".log.old"))
        with contextlib.suppress(FileNotFoundError):
            (self.config.dir / "run" / "asterisk.ctl").unlink()
        proc = subprocess.run(
            self._chroot("/usr/sbin/asterisk", "-C", self.conf, "-n"),
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise SandboxError(f"asterisk did not start: {proc.stderr.strip()}\n{self.log_tail()}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(SandboxError, subprocess.TimeoutExpired):
                self.rx("core waitfullybooted", timeout=timeout)
                return
            time.sleep(0.1)
        raise SandboxError(f"asterisk did not boot within {timeout:.0f} s\n{self.log_tail()}")

    def stop(self, timeout: float = 15.0) -> None:
        """Stop Asterisk now (calls in progress are dropped) and unmount the chroot's /proc."""
        pid = self._pid()
        with contextlib.suppress(SandboxError, subprocess.TimeoutExpired):
            self.rx("core stop now", timeout=5)
        if pid is not None:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.05)
            if _alive(pid):
                os.kill(pid, 9)
        self._umount_proc()

    def _pid(self) -> int | None:
        try:
            return int((self.config.dir / "run" / "asterisk.pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    # -- reading what Asterisk wrote ---------------------------------------------------------
    def log_tail(self, lines: int = 60) -> str:
        """The last lines of Asterisk's messages log, for failure reports."""
        log = self.log_dir / "messages.log"
        if not log.exists():
            return f"(no Asterisk log at {log})"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    def cdrs(self) -> list[dict[str, str]]:
        """Asterisk's own CDR rows (cdr_csv, newcdrcolumns), oldest first."""
        return _read_csv(self.log_dir / "cdr-csv" / "Master.csv", CDR_COLUMNS)

    def cel(self) -> list[dict[str, str]]:
        """Asterisk's own CEL events (cel_custom), oldest first."""
        return _read_csv(self.log_dir / "cel-custom" / "Master.csv", CEL_COLUMNS)

    def reset_records(self) -> None:
        """Empty the CDR and CEL files (Asterisk reopens them on each write)."""
        for path in (
            self.log_dir / "cdr-csv" / "Master.csv",
            self.log_dir / "cel-custom" / "Master.csv",
        ):
            if path.exists():
                path.write_text("")


CDR_COLUMNS: Sequence[str] = (
    "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp",
    "lastdata", "start", "answer", "end", "duration", "billsec", "disposition", "amaflags",
    "uniqueid", "userfield", "peeraccount", "linkedid", "sequence",
)  # fmt: skip
CEL_COLUMNS: Sequence[str] = (
    "eventtype", "eventtime", "cid_num", "dnid", "exten", "context", "channel", "appname",
    "appdata", "uniqueid", "linkedid", "extra",
)  # fmt: skip


def _read_csv(path: Path, columns: Sequence[str]) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="", errors="replace") as f:
        return [dict(zip(columns, row, strict=False)) for row in csv.reader(f) if row]


def _processes_in(rootfs: Path) -> list[int]:
    """PIDs of processes whose root is the chroot (another sandbox's Asterisk, say)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "root") == str(rootfs):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.contextmanager
def running(config: SandboxConfig | None = None) -> Iterator[Sandbox]:
    """Run a sandbox for the duration of a with-block."""
    sandbox = Sandbox(config)
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m callflow.testing.sandbox up|down|status|cli|log|env`."""
    parser = argparse.ArgumentParser(prog="sandbox", description=__doc__)
    parser.add_argument("action", choices=["up", "down", "status", "cli", "log", "env"])
    args = parser.parse_args(argv)
    sandbox = Sandbox()
    c = sandbox.config
    try:
        if args.action == "up":
            sandbox.start()
            print(sandbox.rx("core show version").strip())
            print(
                f"sandbox '{c.name}' up: SIP {c.host}:{c.sip_port}, AMI :{c.ami_port}, "
                f"HTTP/ARI :{c.http_port}, AGI expected on :{c.agi_port}"
            )
            print(f"config and logs: {c.dir}")
        elif args.action == "down":
            sandbox.stop()
            print(f"sandbox '{c.name}' down")
        elif args.action == "status":
            up = sandbox.is_running()
            print(f"sandbox '{c.name}': {'running' if up else 'stopped'}")
            return 0 if up else 1
        elif args.action == "log":
            print(sandbox.log_tail(200))
        elif args.action == "env":
            creds = sandbox.credentials()
            print(f"CALLFLOW_AMI={sandbox.ami_url()}")
            print(f"CALLFLOW_ARI=http://{creds.ari_user}:{creds.ari_secret}@{c.host}:{c.http_port}")
        else:  # cli
            if not sandbox.is_running():
                raise SandboxError("the sandbox is not running: 'make sandbox-up' first")
            os.execvp("chroot", sandbox._chroot("/usr/sbin/asterisk", "-C", sandbox.conf, "-rvvv"))
    except SandboxError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
