"""A throwaway PostgreSQL server for tests and benchmarks.

``TempPostgres`` runs ``initdb`` into a fresh temporary directory and starts
``postgres`` on a unix socket inside that directory only (no TCP listener, so it
can never clash with, or touch, a cluster already running on the machine). It is
stopped and deleted afterwards.

The server binaries are looked up in ``$FORUM_TEST_PG_BINDIR``, then in the newest
``/usr/lib/postgresql/<version>/bin`` (Debian/Ubuntu package ``postgresql``), then
on ``$PATH``. PostgreSQL refuses to run as root: when the harness runs as root it
runs the server as the ``postgres`` user (created by the Debian package) or, if
that does not exist, as ``nobody``.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

_TOOLS = ("initdb", "pg_ctl", "postgres")


def find_bindir() -> str | None:
    """Directory holding initdb/pg_ctl/postgres, or None."""
    candidates = []
    if os.environ.get("FORUM_TEST_PG_BINDIR"):
        candidates.append(os.environ["FORUM_TEST_PG_BINDIR"])

    def version_key(path: str) -> float:
        try:
            return float(Path(path).parent.name)
        except ValueError:
            return 0.0

    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version_key, reverse=True)
    which = shutil.which("initdb")
    if which:
        candidates.append(os.path.dirname(os.path.realpath(which)))
    for directory in candidates:
        if all(os.access(os.path.join(directory, tool), os.X_OK) for tool in _TOOLS):
            return directory
    return None


def unavailable_reason() -> str | None:
    if find_bindir() is None:
        return ("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; "
                "install the Debian package 'postgresql' or set FORUM_TEST_PG_BINDIR")
    if os.geteuid() == 0 and _run_as_user() is None:
        return "running as root and neither a 'postgres' nor a 'nobody' user exists"
    return None


def _run_as_user() -> str | None:
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    return None


class TempPostgres:
    """A private PostgreSQL cluster in a temp dir, reachable via a unix socket."""

    superuser = "forum_test"

    def __init__(self, port: int = 5432, settings: dict[str, str] | None = None) -> None:
        self.bindir = find_bindir()
        if self.bindir is None:
            raise RuntimeError(unavailable_reason())
        self.port = port  # only names the socket file; there is no TCP listener
        self.settings = {
            "listen_addresses": "''",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            # Little WAL: a small data dir that starts, stops and is deleted quickly.
            "wal_level": "minimal",
            "max_wal_senders": "0",
            "max_wal_size": "96MB",
            "max_connections": "100",
            "shared_buffers": "128MB",
        }
        self.settings.update(settings or {})
        self.user = _run_as_user() if os.geteuid() == 0 else None
        # Short path: the unix socket path must stay under ~107 bytes.
        self.base = tempfile.mkdtemp(prefix="forum-pg-")
        self.datadir = os.path.join(self.base, "data")
        self.logfile = os.path.join(self.base, "server.log")
        self._counter = 0

    # -- low level -------------------------------------------------------------
    def _cmd(self, tool: str, *args: str) -> list[str]:
        cmd = [os.path.join(self.bindir, tool), *args]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return cmd

    def _run(self, tool: str, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
        result = subprocess.run(self._cmd(tool, *args), capture_output=True, text=True,
                                timeout=timeout, cwd=self.base)
        if result.returncode != 0:
            log = ""
            if os.path.exists(self.logfile):
                log = Path(self.logfile).read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{tool} {' '.join(args)} failed ({result.returncode}):\n"
                               f"{result.stdout}\n{result.stderr}\n{log}")
        return result

    # -- lifecycle ---------------------------------------------------------------
    def init(self) -> "TempPostgres":
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        os.chmod(self.base, 0o755)
        self._run("initdb", "-D", self.datadir, "-U", self.superuser, "--auth=trust",
                  "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")
        return self

    def start(self) -> None:
        opts = " ".join(f"-c {k}={v}" for k, v in self.settings.items())
        opts += f" -k {self.base} -p {self.port}"
        self._run("pg_ctl", "-D", self.datadir, "-l", self.logfile, "-o", opts, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", self.datadir, "-m", mode, "-w", "-t", "60", "stop")

    def cleanup(self) -> None:
        try:
            if os.path.exists(os.path.join(self.datadir, "postmaster.pid")):
                self.stop("immediate")  # throwaway data: no shutdown checkpoint needed
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> "TempPostgres":
        self.init()
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()

    # -- databases ---------------------------------------------------------------
    def url(self, dbname: str = "postgres") -> str:
        # postgresql+psycopg://forum_test@/<dbname>?host=<socket dir>&port=<port>
        return (f"postgresql+psycopg://{self.superuser}@/{dbname}"
                f"?host={self.base}&port={self.port}")

    def libpq_dsn(self, dbname: str = "postgres") -> str:
        return f"host={self.base} port={self.port} user={self.superuser} dbname={dbname}"

    def execute(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.libpq_dsn(), autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, prefix: str = "t") -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        self._counter += 1
        name = f"{prefix}_{os.getpid()}_{self._counter}_{int(time.time() * 1000) % 100000}"
        try:
            # FILE_COPY (PostgreSQL >= 15) is several times faster for tiny databases.
            self.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 STRATEGY FILE_COPY')
        except Exception:  # older server: no STRATEGY clause
            self.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.split("@/", 1)[1].split("?", 1)[0]
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
