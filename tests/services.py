"""Private PostgreSQL and Redis servers that a test may stop, freeze and restart.

The machine's shared servers (5432, 6379) are never touched: a test that injects an outage
starts its own instance here on a free loopback port. Each server runs in its own process
group, so ``freeze`` (SIGSTOP) stops every backend process at once, as a hung host would.

PostgreSQL refuses to run as root; as root, its data directory is owned by, and the server
runs as, the ``postgres`` system user (Debian's packages create it).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, *, timeout_s: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listened on port {port} within {timeout_s} s")


_AS_POSTGRES = ("-U", "postgres", "test")


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux ``/proc``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _postgres_bin() -> Path:
    base = Path("/usr/lib/postgresql")
    versions = sorted(base.glob("*/bin/postgres")) if base.exists() else []
    if not versions:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL server binaries are missing; CI requires them")
        pytest.skip("PostgreSQL server binaries are not installed")
    return versions[-1].parent


class _Server:
    """A server process in its own process group."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def _start(self, argv: list[str], *, user: str | None = None) -> None:
        kwargs: dict[str, object] = {}
        if user is not None:
            kwargs["user"] = user
        self.proc = subprocess.Popen(  # type: ignore[call-overload]
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            **kwargs,
        )
        assert self.proc is not None
        _wait_port(self.port, timeout_s=30, proc=self.proc)

    def _signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def freeze(self) -> None:
        """Stop every process of the server (SIGSTOP): connections hang, nothing answers."""
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal(signal.SIGCONT)

    def stop(self) -> None:
        """Stop the server and wait for it; its data stays for :meth:`start`."""
        if self.proc is None:
            return
        self._signal(signal.SIGCONT)
        self._signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None


class PrivatePostgres(_Server):
    """``url`` is an asyncpg SQLAlchemy URL of the ``test`` database."""

    def __init__(self, root: Path, *, pristine: Path | None = None) -> None:
        """``pristine``: a stopped server's data directory (made by this class) to copy
        instead of running ``initdb``; the copy is the same fresh cluster, made faster."""
        super().__init__(free_port())
        self.bin = _postgres_bin()
        self.data = root / "data"
        self.sock = root / "sock"
        self.user = "postgres" if os.geteuid() == 0 else None
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/test"
        self._init(root, pristine)

    def _init(self, root: Path, pristine: Path | None) -> None:
        self.sock.mkdir(parents=True)
        owned = [root, self.sock]
        if pristine is not None:
            shutil.copytree(pristine, self.data, symlinks=True)
            owned += [self.data, *self.data.rglob("*")]
        if self.user is not None:
            record = pwd.getpwnam(self.user)
            for path in owned:
                os.lchown(path, record.pw_uid, record.pw_gid)
        if pristine is not None:
            self.start()
            return
        subprocess.run(
            [str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"],
            check=True,
            capture_output=True,
            user=self.user,
        )
        self.start()
        subprocess.run(
            [str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), *_AS_POSTGRES],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        argv = [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        argv += ["-k", str(self.sock), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]
        self._start(argv, user=self.user)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            done = subprocess.run(
                [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
                check=False,
            )
            if done.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("the private PostgreSQL did not become ready")

    def freeze(self) -> None:
        """Stop the postmaster and every backend: open connections hang too. (PostgreSQL
        puts each backend in a session of its own, out of the postmaster's group.)"""
        super().freeze()
        self._signal_children(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal_children(signal.SIGCONT)
        super().thaw()

    def _signal_children(self, sig: int) -> None:
        if self.proc is None:
            return
        for pid in _children(self.proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def stop(self) -> None:
        # SIGINT is PostgreSQL's fast shutdown: clients are disconnected at once.
        if self.proc is not None:
            self._signal(signal.SIGCONT)
            self._signal_children(signal.SIGCONT)  # frozen backends could not shut down
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGINT)
        super().stop()


class PrivateRedis(_Server):
    """``url`` is a redis:// URL of database 0."""

    def __init__(self) -> None:
        super().__init__(free_port())
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.start()

    def start(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            if os.environ.get("CI"):
                pytest.fail("redis-server is missing; CI requires it")
            pytest.skip("redis-server is not installed")
        argv = [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "no", "--daemonize", "no"]
        self._start(argv)


@pytest.fixture(scope="session")
def _pristine_postgres_data() -> Iterator[Path]:
    """The data directory of a new, stopped private PostgreSQL (``initdb`` and the ``test``
    database), made once per session: each ``private_postgres`` starts from a copy."""
    root = Path(tempfile.mkdtemp(prefix="sluice-pg-pristine-"))
    server = PrivatePostgres(root)
    server.stop()
    try:
        yield server.data
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def private_postgres(_pristine_postgres_data: Path) -> Iterator[PrivatePostgres]:
    """A new PostgreSQL server of this test's own, removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="sluice-pg-"))
    server = PrivatePostgres(root, pristine=_pristine_postgres_data)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A Redis server of this test's own, stopped afterwards."""
    server = PrivateRedis()
    try:
        yield server
    finally:
        server.stop()
