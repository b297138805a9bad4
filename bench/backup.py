#!/usr/bin/env python3
"""Backup benchmark (issue 18): pgBackRest backup, restore and WAL archive lag.

Figures, not a test. Run from the repository root with the app's virtualenv
(`make bench-backup`):

    app/.venv/bin/python bench/backup.py [--topics 10000 --replies 10] [--steady 120 --rate 3]

Its own containers (network bench-backup, 172.29.92.0/24, bench-backup-db1,
-db2, -repo1; local/debian-systemd:12, the options of molecule/backup) are
converged over SSH with the project's playbooks (playbooks/database.yml, then
playbooks/pgbackrest.yml: db1 archives its WAL to repo1). The forum's schema
comes from the app's own migrations and `flask forum demo-data` in a private
PostgreSQL on the controller (tests/pg_harness.py), dumped and restored into
db1. Then: a full backup, a differential after --new-posts posts, the WAL
archive lag while a writer inserts posts at --rate per second and then a
burst, and a restore onto the fresh db2 (playbooks/restore.yml
restore_source=pgbackrest) once db1 is gone, with the posts counted back.
archive_timeout is the role's default. The containers are removed at the
end, also on failure or Ctrl-C, unless --keep.
"""
from __future__ import annotations

import argparse
import os
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import app_bench  # noqa: E402
import stack  # noqa: E402
from tests.pg_harness import TempPostgres, unavailable_reason  # noqa: E402

ANSIBLE_PLAYBOOK = str(ROOT / ".venv" / "bin" / "ansible-playbook")
STANZA = "forum"
REPO_USER = "pgbackrest"
HOSTS = [("db1", "db"), ("db2", "db"), ("repo1", "backup")]
NEW_POST = ("INSERT INTO posts (topic_id, user_id, body, body_html, created_at, is_deleted) "
            "SELECT (SELECT min(id) FROM topics), (SELECT min(id) FROM users), 'bench post', "
            "'<p>bench post</p>', now() at time zone 'utc', false;")


def log(message: str) -> None:
    stack.log(message)


def in_container(lab: stack.Lab, host: str, *argv: str, user: str = "", stdin=None,
                 timeout: float = 3600) -> str:
    prefix = ["runuser", "-u", user, "--"] if user else []
    result = subprocess.run(["docker", "exec", "-i", lab.prefix + host, *prefix, *argv], input=stdin,
                            capture_output=True, text=stdin is None or isinstance(stdin, str), timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{host}: {' '.join(argv)} failed: {result.stderr!s:.3000}")
    return result.stdout.strip() if isinstance(result.stdout, str) else result.stdout.decode().strip()


def sql(lab: stack.Lab, host: str, query: str) -> str:
    return in_container(lab, host, "psql", "-XAt", "-v", "ON_ERROR_STOP=1", "-d", "forum", "-c", query,
                        user="postgres")


def pgbackrest(lab: stack.Lab, *args: str) -> str:
    return in_container(lab, "repo1", "pgbackrest", f"--stanza={STANZA}", *args, user=REPO_USER)


def write_inventory(lab: stack.Lab, run_dir: Path) -> Path:
    """Hosts with the backup scenario's variables; the secrets (random, this
    run only) in a 0600 file of the run directory, never printed."""
    inv = run_dir / "inventory"
    inv.mkdir(parents=True, exist_ok=True)
    key = lab.lab_dir / "id_ed25519"
    lines = ["---", "all:", "  vars:", "    ansible_user: root",
             f"    ansible_ssh_private_key_file: {key}",
             f"    ansible_ssh_common_args: -o UserKnownHostsFile={lab.lab_dir}/known_hosts"
             " -o StrictHostKeyChecking=accept-new",
             "    postgresql_backup_enabled: false", "  children:"]
    for group in ("db", "backup"):
        lines += [f"    {group}:", "      hosts:"]
        for name in lab.group(group):
            addr = lab.address(name)
            lines += [f"        {name}:", f"          ansible_host: {addr}", f"          private_address: {addr}"]
    (inv / "hosts.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    secrets_file = run_dir / "secrets.yml"
    secrets_file.touch(mode=0o600)
    secrets_file.write_text(f"postgresql_app_password: {secrets.token_hex(16)}\n"
                            f"pgbackrest_cipher_pass: {secrets.token_hex(24)}\n", encoding="utf-8")
    return inv / "hosts.yml"


def playbook(lab: stack.Lab, inventory: Path, run_dir: Path, name: str, *extra: str) -> float:
    log_path = run_dir / f"{Path(name).stem}-{int(time.time())}.log"
    argv = [ANSIBLE_PLAYBOOK, "-i", str(inventory), "-e", f"@{run_dir / 'secrets.yml'}", str(ROOT / name), *extra]
    log(f"ansible-playbook {name} {' '.join(extra)} (log: {log_path})")
    start = time.monotonic()
    with open(log_path, "w", encoding="utf-8") as out:
        rc = stack.run_group(argv, timeout=3600, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                             env=stack.ansible_env(lab))
    if rc != 0:
        raise RuntimeError(f"{name} failed (exit {rc}); see {log_path}")
    return time.monotonic() - start


def load_forum(lab: stack.Lab, run_dir: Path, topics: int, replies: int) -> float:
    """Migrate + demo-data in a private PostgreSQL here, then pg_restore into db1."""
    start = time.monotonic()
    with TempPostgres() as pg:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("FORUM_", "DATABASE_URL", "SECRET_KEY", "RATELIMIT"))}
        url = pg.create_database("bench")
        env.update(FORUM_ENV="production", SECRET_KEY="bench-" + os.urandom(16).hex(), DATABASE_URL=url,
                   SESSION_COOKIE_SECURE="false", FORUM_RELEASE="bench", _APP_DIR=str(app_bench.APP_DIR))
        app_bench.flask(env, "db", "upgrade")
        app_bench.flask(env, "forum", "ensure-board", "Board 1", "--slug", "board-1", "--description", "Bench")
        log(app_bench.flask(env, "forum", "demo-data", "--topics", str(topics), "--replies", str(replies)))
        dbname = url.split("@/", 1)[1].split("?")[0]
        dump = run_dir / "forum.dump"
        subprocess.run(["pg_dump", "-Fc", "--no-owner", "--no-privileges", "-h", str(pg.base), "-p", str(pg.port),
                        "-U", pg.superuser, "-f", str(dump), dbname], check=True)
    # On stdin: docker cp cannot write into the container's tmpfs /tmp.
    in_container(lab, "db1", "pg_restore", "--no-owner", "--role=forum", "-d", "forum",
                 user="postgres", stdin=dump.read_bytes())
    return time.monotonic() - start


def repo_size(lab: stack.Lab, what: str) -> str:
    return in_container(lab, "repo1", "du", "-sh", f"/var/lib/pgbackrest/{what}/{STANZA}").split()[0]


def wait_archived(lab: stack.Lab, walfile: str, timeout: float = 120) -> None:
    """Until db1 reports walfile (or a later one) archived."""
    deadline = time.monotonic() + timeout
    while sql(lab, "db1", "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") < walfile:
        if time.monotonic() > deadline:
            raise RuntimeError(f"db1: {walfile} not archived after {timeout:g} s")
        time.sleep(1)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text(encoding="ascii").split()[:3])


def timed(fn, *args) -> float:
    start = time.monotonic()
    fn(*args)
    return time.monotonic() - start


class Writer(threading.Thread):
    """Posts into db1 through one psql session, `rate` a second (autocommit)."""

    def __init__(self, lab: stack.Lab):
        super().__init__(daemon=True)
        self.proc = subprocess.Popen(["docker", "exec", "-i", lab.prefix + "db1", "runuser", "-u", "postgres", "--",
                                      "psql", "-XAtq", "-d", "forum"], stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, text=True)
        self.rate = 0.0
        self.written = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            if self.rate <= 0:
                time.sleep(0.1)
                continue
            start = time.monotonic()
            self.proc.stdin.write(NEW_POST + "\n")
            self.proc.stdin.flush()
            self.written += 1
            time.sleep(max(0.0, 1.0 / self.rate - (time.monotonic() - start)))

    def close(self) -> None:
        self.stop.set()
        self.join(timeout=10)
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def archive_lag(lab: stack.Lab, phases: list[tuple[str, float, float]]) -> dict:
    """Sample every second (current WAL file, last archived file); each sample's
    lag = until its file is archived. Returns {phase: [lags]}."""
    samples: list[tuple[str, float, str]] = []
    archived_at: dict[str, float] = {}
    query = "SELECT pg_walfile_name(pg_current_wal_lsn()), coalesce(last_archived_wal, '') FROM pg_stat_archiver"
    writer = Writer(lab)
    writer.start()

    def sample(phase: str) -> None:
        now = time.monotonic()
        current, last = sql(lab, "db1", query).split("|")
        samples.append((phase, now, current))
        if last and last not in archived_at:
            archived_at[last] = now

    try:
        for phase, rate, seconds in phases:
            log(f"lag: {phase}: {rate:g} posts/s for {seconds:g}s")
            writer.rate = rate
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                sample(phase)
                time.sleep(max(0.0, 1.0 - (time.monotonic() % 1.0)))
        writer.rate = 0
        last_needed = max(current for _, _, current in samples)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not any(f >= last_needed for f in archived_at):
            time.sleep(1)
            sample("drain")
    finally:
        writer.close()
    lags: dict[str, list[float]] = {}
    files = sorted(archived_at.items())
    for phase, at, current in samples:
        if phase == "drain":
            continue
        done = next((t for f, t in files if f >= current and t >= at), None)
        if done is not None:
            lags.setdefault(phase, []).append(done - at)
    return {"lags": lags, "written": writer.written}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--topics", type=int, default=10000)
    ap.add_argument("--replies", type=int, default=10, help="replies per topic (10 -> 100k replies)")
    ap.add_argument("--new-posts", type=int, default=1000, help="posts written between full and differential")
    ap.add_argument("--rate", type=float, default=3, help="steady write rate, posts/s")
    ap.add_argument("--steady", type=float, default=150, help="seconds of steady writes")
    ap.add_argument("--burst-rate", type=float, default=300, help="burst write rate, posts/s")
    ap.add_argument("--burst", type=float, default=20, help="seconds of burst writes")
    ap.add_argument("--keep", action="store_true", help="leave the containers running")
    args = ap.parse_args()
    reason = unavailable_reason()
    if reason:
        raise SystemExit(reason)

    run_dir = stack.OUT_DIR / f"backup-{time.strftime('%Y%m%dT%H%M%S')}"
    run_dir.mkdir(parents=True, exist_ok=True)
    lab = stack.Lab("backup", "172.29.92", HOSTS, run_dir)
    lab.network, lab.prefix = "bench-backup", "bench-backup-"

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)

    rows: list[tuple[str, str]] = []
    load_start = loadavg()
    commit = stack.sh(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT).stdout.strip() or "?"
    try:
        lab.down(quiet=True)
        lab.created = True
        start = time.monotonic()
        result = stack.sh([str(stack.LAB_SCRIPT), "up"], env=lab.env(), cwd=ROOT, timeout=900)
        if result.returncode != 0:
            raise RuntimeError(f"lab.sh up failed:\n{result.stderr[-3000:]}")
        inventory = write_inventory(lab, run_dir)
        rows.append(("containers up", f"{time.monotonic() - start:.1f} s"))
        rows.append(("converge db1+db2+repo1: database.yml",
                     f"{playbook(lab, inventory, run_dir, 'playbooks/database.yml'):.1f} s"))
        rows.append(("converge: pgbackrest.yml",
                     f"{playbook(lab, inventory, run_dir, 'playbooks/pgbackrest.yml'):.1f} s"))
        timeout = in_container(lab, "db1", "psql", "-XAt", "-c", "SHOW archive_timeout", user="postgres")
        rows.append(("archive_timeout (role default)", timeout))

        log(f"loading {args.topics} topics, {args.topics * args.replies} replies")
        rows.append(("load forum (migrate, demo-data, dump, restore into db1)",
                     f"{load_forum(lab, run_dir, args.topics, args.replies):.1f} s"))
        posts = sql(lab, "db1", "SELECT count(*) FROM posts")
        size = sql(lab, "db1", "SELECT pg_size_pretty(pg_database_size('forum'))")
        rows.append(("posts in db1 / forum database size", f"{posts} / {size}"))

        log("full backup")
        rows.append(("full backup (pgbackrest backup --type=full)",
                     f"{timed(pgbackrest, lab, 'backup', '--type=full'):.1f} s"))
        rows.append(("repo size after full: backup / archive",
                     f"{repo_size(lab, 'backup')} / {repo_size(lab, 'archive')}"))
        in_container(lab, "db1", "psql", "-XAtq", "-d", "forum", "-v", "ON_ERROR_STOP=1", user="postgres",
                     stdin=NEW_POST * args.new_posts)
        rows.append((f"differential after {args.new_posts} new posts",
                     f"{timed(pgbackrest, lab, 'backup', '--type=diff'):.1f} s"))
        rows.append(("repo size after diff: backup / archive",
                     f"{repo_size(lab, 'backup')} / {repo_size(lab, 'archive')}"))

        lag = archive_lag(lab, [("steady", args.rate, args.steady), ("burst", args.burst_rate, args.burst),
                                ("after burst", args.rate, 30)])
        for phase, values in lag["lags"].items():
            rows.append((f"WAL archive lag, {phase} ({len(values)} samples): p50 / max",
                         f"{statistics.median(values):.1f} s / {max(values):.1f} s"))
        rows.append(("posts written by the lag writer", str(lag["written"])))

        wait_archived(lab, sql(lab, "db1", "SELECT pg_walfile_name(pg_switch_wal())"))
        expected = sql(lab, "db1", "SELECT count(*) FROM posts")
        log("db1 removed; restoring onto db2")
        subprocess.run(["docker", "rm", "-f", lab.prefix + "db1"], check=True, capture_output=True)
        rows.append(("restore onto db2 (restore.yml restore_source=pgbackrest)",
                     f"{playbook(lab, inventory, run_dir, 'playbooks/restore.yml', '--limit', 'db2', '-e', 'restore_source=pgbackrest', '-e', f'pgbackrest_restore_confirm={STANZA}'):.1f} s"))
        restored = sql(lab, "db2", "SELECT count(*) FROM posts")
        rows.append(("posts read back on db2 / in db1 before it went", f"{restored} / {expected}"))
    finally:
        if rows:
            rows.append(("load average (1/5/15 min) at start / end", f"{load_start} / {loadavg()}"))
            width = max(len(k) for k, _ in rows)
            print(f"\nbench/backup.py at {commit}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
                  f"{os.cpu_count()} CPUs (shared), logs: {run_dir}")
            for key, value in rows:
                print(f"{key:{width}}  {value}")
        (run_dir / "secrets.yml").unlink(missing_ok=True)
        if args.keep:
            log(f"containers kept: {lab.keep_hint()}")
        else:
            lab.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
