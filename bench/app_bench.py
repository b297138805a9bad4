#!/usr/bin/env python3
"""Forum benchmark: Gunicorn + a throwaway PostgreSQL + wrk, on loopback only.

Figures, not a test. Run from the repository root with the app's virtualenv:

    app/.venv/bin/python bench/app_bench.py [--topics 10000 --replies 10] [--duration 10]

It starts a private PostgreSQL cluster in a temp dir (tests/pg_harness.py; unix
socket only, never the machine's own cluster), migrates it, loads demo data,
serves the app with Gunicorn on 127.0.0.1, and runs ``wrk`` against:
the board index, a board page, a topic page and a trivial endpoint (/ping): anonymous
with the page cache off and on, and as a logged-in member (``--cache-modes``).
Requires: PostgreSQL server binaries (Debian package ``postgresql``) and ``wrk``.
"""
from __future__ import annotations

import argparse
import http.cookiejar
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP_DIR = ROOT / "app"
sys.path.insert(0, str(APP_DIR))

from tests.pg_harness import TempPostgres, unavailable_reason  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def flask(env: dict, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=env["_APP_DIR"],
                            env=env, capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise SystemExit(f"flask {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout.strip()


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server did not answer {url}")


def parse_wrk(output: str) -> tuple[float, str, int]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return rps, p99, int(non2xx.group(1)) if non2xx else 0


def run_wrk(url: str, duration: int, connections: int, threads: int,
            headers: tuple[str, ...] | list[str] = ()) -> tuple[float, str, int]:
    """(req/s, p99 latency, non-2xx/3xx count) of one wrk run; `headers` like "Host: web1"."""
    extra = [arg for header in headers for arg in ("-H", header)]
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", *extra, url],
                         capture_output=True, text=True, timeout=duration + 60, check=True).stdout
    return parse_wrk(out)


BENCH_USER = "benchmember"


def member_cookie(base: str, password: str) -> str:
    """Log BENCH_USER in as a browser would: GET the form, POST it back with its CSRF
    token and the session cookie; returns the ``Cookie:`` value of the logged-in session."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    form = opener.open(base + "/login").read().decode()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form)
    if token is None:
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form)
    data = urllib.parse.urlencode({"csrf_token": token.group(1), "username": BENCH_USER,
                                   "password": password}).encode()
    page = opener.open(base + "/login", data=data).read().decode()
    if "Log out" not in page:
        raise SystemExit("bench member login failed")
    return "; ".join(f"{c.name}={c.value}" for c in jar)


def serve_and_measure(env: dict, gunicorn: Path, args, mode: str) -> float:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(gunicorn), "-w", str(args.workers), "-b", f"127.0.0.1:{port}",
         "--log-level", "warning", "wsgi:app"],
        cwd=env["_APP_DIR"], env=env, stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_http(base + "/healthz")
        topic_id = re.search(r'href="/t/(\d+)"',
                             urllib.request.urlopen(base + "/b/board-1").read().decode()).group(1)
        targets = [
            ("trivial  /ping", "/ping"),
            ("index    /", "/"),
            ("board    /b/board-1", "/b/board-1"),
            ("board    /b/board-1?page=50", "/b/board-1?page=50"),
            (f"topic    /t/{topic_id}", f"/t/{topic_id}"),
        ]
        headers: list[str] = []
        if mode == "member":
            headers = [f"Cookie: {member_cookie(base, env['FORUM_ADMIN_PASSWORD'])}"]
            page = urllib.request.urlopen(urllib.request.Request(
                base + targets[3][1], headers=dict([headers[0].split(": ", 1)]))).read().decode()
            if BENCH_USER not in page:  # the cookie must really make the requests a member's
                raise SystemExit("the member cookie does not log in")
        for _, path in targets:  # warm every worker's pool and caches
            run_wrk(base + path, 2, args.connections, args.threads, headers)
        results = {}
        who = "logged-in member (session cookie), page cache on" if mode == "member" else mode
        print(f"\n[{who}] wrk -t{args.threads} -c{args.connections} -d{args.duration}s, "
              f"gunicorn {args.workers} sync workers, {os.cpu_count()} CPUs")
        print("(each page is measured right after its own /ping run; the ratio is to that run,"
              " which keeps it meaningful when the machine's load varies)")
        print(f"{'endpoint':32} {'req/s':>9} {'p99':>9} {'/ping req/s':>11} {'vs trivial':>10}")
        for label, path in targets[1:]:
            ping_rps, ping_p99, _ = run_wrk(base + "/ping", args.duration, args.connections, args.threads)
            rps, p99, errors = run_wrk(base + path, args.duration, args.connections, args.threads, headers)
            results[path] = rps / ping_rps
            flag = f"  ({errors} non-2xx!)" if errors else ""
            print(f"{label:32} {rps:9.0f} {p99:>9} {ping_rps:11.0f} {rps / ping_rps * 100:9.0f}%{flag}",
                  flush=True)
        print(f"{'trivial  /ping (last run)':32} {ping_rps:9.0f} {ping_p99:>9}")
        return results
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--topics", type=int, default=10000)
    ap.add_argument("--replies", type=int, default=10, help="replies per topic (10 -> 100k replies)")
    ap.add_argument("--boards", type=int, default=4)
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--app-dir", type=Path, default=APP_DIR,
                    help="app to serve (e.g. an export of an older release, to compare)")
    ap.add_argument("--cache-modes", default="off,on,member",
                    help="what to measure, comma-separated: 'off' (anonymous, page cache off), 'on' "
                         "(anonymous, page cache on), 'member' (a logged-in session cookie, cache on)")
    ap.add_argument("--workers", type=int, default=(os.cpu_count() or 1) * 2,
                    help="gunicorn sync workers (default 2 x CPUs)")
    args = ap.parse_args()

    reason = unavailable_reason()
    if reason:
        raise SystemExit(reason)
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found (apt-get install wrk)")
    gunicorn = Path(sys.executable).with_name("gunicorn")
    if not gunicorn.exists():
        raise SystemExit(f"{gunicorn} not found: run with the app's virtualenv python")

    with TempPostgres(settings={"max_connections": "200"}) as pg:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("FORUM_", "DATABASE_URL", "SECRET_KEY", "RATELIMIT"))}
        env.update(FORUM_ENV="production", SECRET_KEY="bench-" + os.urandom(16).hex(),
                   DATABASE_URL=pg.create_database("bench"), SESSION_COOKIE_SECURE="false",
                   FORUM_RELEASE="bench", _APP_DIR=str(args.app_dir.resolve()),
                   FORUM_PAGE_CACHE_SECONDS="0")  # set per measured mode below
        t0 = time.monotonic()
        flask(env, "db", "upgrade")
        for i in range(1, args.boards + 1):
            flask(env, "forum", "ensure-board", f"Board {i}", "--slug", f"board-{i}",
                  "--description", f"Benchmark board {i}")
        print(flask(env, "forum", "demo-data", "--topics", str(args.topics), "--replies", str(args.replies)))
        env["FORUM_ADMIN_PASSWORD"] = os.urandom(12).hex()  # the bench member's password
        flask(env, "forum", "create-admin", BENCH_USER, "--email", "bench@example.invalid")
        flask(env, "forum", "set-role", BENCH_USER, "member")
        print(f"setup: {time.monotonic() - t0:.1f}s; {args.topics} topics, "
              f"{args.topics * args.replies} replies over {args.boards} boards")

        summary = []
        modes = {"off": ("page cache off", "0"), "on": ("page cache on", "10"), "member": ("member", "10")}
        for mode, cache_seconds in (modes[m] for m in args.cache_modes.split(",")):
            env["FORUM_PAGE_CACHE_SECONDS"] = cache_seconds
            results = serve_and_measure(env, gunicorn, args, mode)
            if mode == "member":
                index, board, topic = (results[p] for p in list(results) if p != "/b/board-1?page=50")
                summary.append(f"member: index {index:.0%}, board page {board:.0%}, topic page {topic:.0%}"
                               " of trivial")
            else:
                summary.append(f"{mode}: board page / trivial = {results['/b/board-1']:.0%}")
        print("\n" + "\n".join(summary) + "  (target >= 50%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
