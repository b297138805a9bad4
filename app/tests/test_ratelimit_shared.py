"""Rate limits shared by gunicorn workers through a real Redis.

Each test starts a throwaway ``redis-server`` (unix socket in a temp dir, no TCP
port, no persistence, a password) and the app under gunicorn with 3 sync
workers, as the forum role runs it (FORUM_ENV=production, CSRF on), on SQLite
and on PostgreSQL. The same guesses against ``memory://`` show what is lost
without the shared store: each worker counts on its own.

Needs the Debian package ``redis-server``; without it these tests fail (they do
not skip), saying so.
"""
from __future__ import annotations

import http.cookiejar
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from forum.extensions import db as _db
from forum.models import Post, User, utcnow

from .conftest import create_board, create_user, make_app

APP_DIR = Path(__file__).resolve().parent.parent
WORKERS = 3


class TempRedis:
    """redis-server on a unix socket in a temp dir: no TCP port, nothing saved."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server not found: apt-get install redis-server "
                        "(the shared rate-limit tests need a real Redis)", pytrace=False)
        self.dir = directory
        self.socket = directory / "redis.sock"
        self.password = secrets.token_hex(16)
        self.log = directory / "redis.log"
        self.proc = subprocess.Popen(
            [binary, "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700",
             "--save", "", "--appendonly", "no", "--dir", str(directory),
             "--requirepass", self.password, "--daemonize", "no", "--logfile", str(self.log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not self.socket.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"redis-server did not start: {self.log.read_text() if self.log.exists() else ''}")
            time.sleep(0.05)

    @property
    def uri(self) -> str:
        return f"redis+unix://:{self.password}@{self.socket}?db=0"

    def client(self):
        import redis

        return redis.Redis(unix_socket_path=str(self.socket), password=self.password)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def redis_server(tmp_path):
    directory = tmp_path / "redis"
    directory.mkdir()
    server = TempRedis(directory)
    yield server
    server.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """The app under gunicorn, WORKERS sync workers, on a loopback port."""

    def __init__(self, tmp_path: Path, db_url: str, storage_uri: str | None, **limits: str) -> None:
        gunicorn = Path(sys.executable).with_name("gunicorn")
        assert gunicorn.exists(), f"{gunicorn} not found"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / f"gunicorn-{self.port}.log"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("FORUM_", "RATELIMIT_", "DATABASE_URL", "SECRET_KEY"))}
        env.update(FORUM_ENV="production", SECRET_KEY="test-" + secrets.token_hex(16),
                   DATABASE_URL=db_url, SESSION_COOKIE_SECURE="false", FORUM_PAGE_CACHE_SECONDS="0",
                   FORUM_RELEASE="ratelimit-test", **limits)
        if storage_uri:
            env["RATELIMIT_STORAGE_URI"] = storage_uri
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [str(gunicorn), "--workers", str(WORKERS), "--worker-class", "sync",
                 "--bind", f"127.0.0.1:{self.port}", "--chdir", str(APP_DIR), "--log-level", "info",
                 "wsgi:app"],
                env=env, stdout=log, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self) -> None:
        """Every worker has imported the app (each logs that it booted, then the app
        is imported), and /ping answers."""
        deadline = time.monotonic() + 60
        while True:
            text = self.log.read_text(errors="replace")
            booted = text.count("Booting worker")
            if booted >= WORKERS:
                try:
                    with urllib.request.urlopen(self.url + "/ping", timeout=5) as resp:
                        if resp.status == 200:
                            break
                except OSError:
                    pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"gunicorn did not start:\n{text[-3000:]}")
            time.sleep(0.1)
        # Workers import the app after "Booting worker": give the last one time to be ready.
        for _ in range(3 * WORKERS):
            urllib.request.urlopen(self.url + "/ping", timeout=5).close()
        time.sleep(1.0)

    def wait_for_log(self, line: str, count: int, timeout: float = 60) -> int:
        """How often `line` is in the log once it is there `count` times, or at the
        timeout (then the caller's assertion shows the shortfall)."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.log.read_text(errors="replace").count(line)
            if seen >= count or time.monotonic() > deadline:
                return seen
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def serve(tmp_path):
    servers = []

    def start(db_url, storage_uri, **limits):
        server = Gunicorn(tmp_path, db_url, storage_uri, **limits)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """One visitor: its own cookies, its own (proxied) client address."""

    def __init__(self, base: str, address: str = "203.0.113.7") -> None:
        self.base = base
        self.address = address
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect())

    def request(self, method: str, path: str, data: dict | None = None):
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(self.base + path, data=body, method=method,
                                     headers={"X-Forwarded-For": self.address})
        try:
            with self.opener.open(req, timeout=30) as resp:
                return resp.status, dict(resp.headers), resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read().decode()

    def csrf(self, path: str) -> str:
        status, _, html = self.request("GET", path)
        assert status == 200, (path, status)
        match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
        assert match, html
        return match.group(1)

    def post_form(self, form_path: str, action: str | None = None, **fields):
        fields["csrf_token"] = self.csrf(form_path)
        return self.request("POST", action or form_path, fields)


def _login_guess(base: str, username: str, address: str, password: str = "wrong password") -> tuple:
    browser = Browser(base, address)
    status, headers, body = browser.post_form("/login", username=username, password=password)
    return status, headers, body


def _guesses(base: str, usernames_and_addresses, parallel: int = 6) -> list[int]:
    """The guesses, `parallel` at a time, so the workers serve them side by side."""
    with ThreadPoolExecutor(parallel) as pool:
        results = list(pool.map(lambda ua: _login_guess(base, *ua), usernames_and_addresses))
    return results


def _assert_429_page(status, headers, body, window: int):
    assert status == 429
    seconds = int(re.search(r"try again in (\d+) seconds?", body).group(1))
    assert headers["Retry-After"] == str(seconds)
    assert 1 <= seconds <= window


def _db_with_alice(tmp_path, db_url):
    app = make_app(tmp_path, db_url)
    create_user(app, "alice", "correct horse")
    create_board(app)
    return app


def test_login_guesses_for_one_account_shared_by_workers(tmp_path, new_db_url, redis_server, serve):
    db_url = new_db_url()
    _db_with_alice(tmp_path, db_url)
    server = serve(db_url, redis_server.uri, FORUM_LOGIN_RATE_LIMIT="100 per minute",
                   FORUM_LOGIN_ACCOUNT_RATE_LIMIT="10 per minute")
    # 30 guesses for alice, each from its own address, spread over the 3 workers.
    results = _guesses(server.url, [("alice", f"192.0.2.{i + 1}") for i in range(30)])
    codes = [r[0] for r in results]
    assert codes.count(401) == 10, codes
    assert codes.count(429) == 20, codes
    _assert_429_page(*next(r for r in results if r[0] == 429), window=60)
    # The counters are in Redis, under the app's prefix.
    assert redis_server.client().keys("*forum*")
    # Another account is not locked.
    assert _login_guess(server.url, "bob", "192.0.2.99")[0] == 401


def test_login_guesses_from_one_address_shared_by_workers(tmp_path, new_db_url, redis_server, serve):
    db_url = new_db_url()
    _db_with_alice(tmp_path, db_url)
    server = serve(db_url, redis_server.uri, FORUM_LOGIN_RATE_LIMIT="10 per minute",
                   FORUM_LOGIN_ACCOUNT_RATE_LIMIT="100 per minute")
    # 30 guesses from one address, each for another account.
    codes = [r[0] for r in _guesses(server.url, [(f"user{i}", "203.0.113.7") for i in range(30)])]
    assert codes.count(401) == 10, codes
    assert codes.count(429) == 20, codes


def test_without_redis_each_worker_counts_alone(tmp_path, redis_server, serve):
    """The same 30 guesses against memory:// (RATELIMIT_STORAGE_URI unset): more than
    10 get through, up to 3 x 10, because each of the 3 workers has its own count."""
    db_url = f"sqlite:///{tmp_path / 'memory.db'}"
    _db_with_alice(tmp_path, db_url)
    server = serve(db_url, None, FORUM_LOGIN_RATE_LIMIT="100 per minute",
                   FORUM_LOGIN_ACCOUNT_RATE_LIMIT="10 per minute")
    # Each worker warns once when it imports the app; a busy machine may still be
    # importing in the last one when /ping first answers.
    assert server.wait_for_log("rate limits are counted in memory, per worker", WORKERS) == WORKERS
    codes = [r[0] for r in _guesses(server.url, [("alice", f"192.0.2.{i + 1}") for i in range(30)])]
    through = codes.count(401)
    print(f"memory:// let {through} of 30 guesses through")
    assert 10 < through <= 10 * WORKERS, codes
    assert not redis_server.client().keys("*")  # nothing went to Redis


def test_registration_per_address_shared_by_workers(tmp_path, new_db_url, redis_server, serve):
    db_url = new_db_url()
    app = _db_with_alice(tmp_path, db_url)
    server = serve(db_url, redis_server.uri, FORUM_REGISTER_RATE_LIMIT="5 per hour")

    def register(i, address="203.0.113.7"):
        return Browser(server.url, address).post_form(
            "/register", username=f"spam{i}", email=f"spam{i}@example.org",
            password="long enough pw", confirm="long enough pw")

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(register, range(20)))
    codes = [r[0] for r in results]
    assert codes.count(302) == 5, codes
    assert codes.count(429) == 15, codes
    _assert_429_page(*next(r for r in results if r[0] == 429), window=3600)
    with app.app_context():
        assert _db.session.scalar(select(func.count(User.id)).where(User.username.like("spam%"))) == 5
    assert register(99, address="198.51.100.9")[0] == 302


def _logged_in(base: str, username: str) -> Browser:
    browser = Browser(base, address=f"198.51.100.{len(username)}")
    status, headers, _ = browser.post_form("/login", username=username, password="correct horse")
    assert status == 302, status
    return browser


def test_posting_limits_shared_by_workers(tmp_path, new_db_url, redis_server, serve):
    db_url = new_db_url()
    app = _db_with_alice(tmp_path, db_url)
    create_user(app, "newbie", "correct horse")
    with app.app_context():
        alice = _db.session.scalar(select(User).where(User.username == "alice"))
        alice.created_at = utcnow() - timedelta(days=2)
        _db.session.commit()
    server = serve(db_url, redis_server.uri, FORUM_POST_RATE_LIMIT="6 per minute",
                   FORUM_NEW_ACCOUNT_POST_RATE_LIMIT="2 per minute", FORUM_NEW_ACCOUNT_SECONDS="86400")

    def count_posts(username):
        with app.app_context():
            return _db.session.scalar(select(func.count(Post.id)).join(User, Post.user_id == User.id)
                                      .where(User.username == username))

    # alice (two days old): one topic, then replies, 6 posts in all, then 429.
    browser = _logged_in(server.url, "alice")
    status, headers, _ = browser.post_form("/b/general/new", title="Shared limits", body="first")
    assert status == 302
    topic_path = urllib.parse.urlsplit(headers["Location"]).path
    token = browser.csrf(topic_path)

    def reply(i):
        return browser.request("POST", topic_path + "/reply", {"csrf_token": token, "body": f"reply {i}"})

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(reply, range(12)))
    codes = [r[0] for r in results]
    assert codes.count(302) == 5, codes
    assert codes.count(429) == 7, codes
    _assert_429_page(*next(r for r in results if r[0] == 429), window=60)
    assert count_posts("alice") == 6
    # newbie (created today): the stricter limit, 2 topics.
    newbie = _logged_in(server.url, "newbie")
    codes = [newbie.post_form("/b/general/new", title=f"Topic {i}", body="x")[0] for i in range(4)]
    assert codes == [302, 302, 429, 429]
    assert count_posts("newbie") == 2
