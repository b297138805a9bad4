"""Redis on the db host (group `redis`) as the one store of the forum's rate
limits: a login limit counted once across two web hosts, the Redis port
open to the web hosts only and closed to anyone without the password, and
the storage URI (it holds the password) in the web hosts' .env only, never
in Ansible's output."""
import os
import shlex
import socket
import uuid

import pytest
import testlib  # noqa: E402  (the scenario conftest put it on sys.path)

ENV_FILE = "/srv/forum/shared/.env"
REDIS_PORT = 6379

# One failed login for `sys.argv[1]` through this web host's own nginx, as
# a browser does it (the login page's session cookie and CSRF token, then
# the POST); prints the status and the Retry-After header ("-" if none).
LOGIN_SCRIPT = r"""
import http.cookiejar, re, ssl, sys, urllib.error, urllib.parse, urllib.request
opener = urllib.request.build_opener(
    urllib.request.HTTPSHandler(context=ssl._create_unverified_context()),
    urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
# Flask-WTF checks the Referer of an HTTPS POST, as a browser sends it.
opener.addheaders = [('Referer', 'https://127.0.0.1/login')]
page = opener.open('https://127.0.0.1/login', timeout=30).read().decode()
token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
form = urllib.parse.urlencode({'csrf_token': token, 'username': sys.argv[1],
                               'password': 'not-the-password-' + sys.argv[1]}).encode()
try:
    answer = opener.open('https://127.0.0.1/login', form, timeout=30)
    print(answer.status, '-')
except urllib.error.HTTPError as error:
    print(error.code, error.headers.get('Retry-After') or '-')
"""

# Talks RESP to Redis at argv[1]:argv[2]: `AUTH <stdin>` when stdin holds a
# password, then PING; prints each reply's first line.
REDIS_SCRIPT = r"""
import socket, sys
password = sys.stdin.read()
conn = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
reader = conn.makefile('rb')
def command(*words):
    parts = [b'*%d\r\n' % len(words)]
    parts += [b'$%d\r\n%s\r\n' % (len(w.encode()), w.encode()) for w in words]
    conn.sendall(b''.join(parts))
    print(reader.readline().decode().strip())
if password:
    command('AUTH', password)
command('PING')
"""


@pytest.fixture(scope="module")
def redis_host():
    return testlib.nodes("redis")[0]


@pytest.fixture(scope="module")
def redis_password():
    """The password the scenario generated for redis_password (molecule.yml)."""
    with open(os.path.join(testlib.EPHEMERAL, "secrets", "redis")) as handle:
        return handle.read().split()[0]


def failed_login(web, username):
    """(status, Retry-After) of one failed login through `web`'s nginx."""
    out = web.host.check_output(f"python3 -c {shlex.quote(LOGIN_SCRIPT)} {shlex.quote(username)}")
    status, retry_after = out.split()
    return int(status), retry_after


def redis_replies(node, address, password=""):
    """Redis' replies to [AUTH password,] PING from `node`."""
    result = node.host.run(f"printf %s {shlex.quote(password)} | python3 -c {shlex.quote(REDIS_SCRIPT)} "
                           f"{address} {REDIS_PORT}")
    assert result.rc == 0, result.stderr
    return result.stdout.splitlines()


# --- one limit for the whole site --------------------------------------------

def test_failed_logins_are_counted_once_across_two_web_hosts(webs):
    """30 wrong passwords for one fresh account, alternating between two web
    hosts (each with its own app server workers): exactly the configured 10
    (forum_login_account_rate_limit, molecule.yml) get through to the
    password check (401), every other one is refused with 429 and a
    Retry-After. Counted per host or per worker, far more would pass."""
    first, second = webs[0], webs[1]
    username = f"rl-{uuid.uuid4().hex[:16]}"
    answers = [failed_login(first if n % 2 == 0 else second, username) for n in range(30)]
    statuses = [status for status, _ in answers]
    assert statuses[:10] == [401] * 10, answers
    assert statuses[10:] == [429] * 20, answers
    for _, retry_after in answers[10:]:
        assert retry_after.isdigit() and 1 <= int(retry_after) <= 60, answers
    # Another account is not affected by this one's count.
    assert failed_login(second, f"rl-{uuid.uuid4().hex[:16]}")[0] == 401


# --- the port: the web hosts only, and only with the password -----------------

def test_redis_port_is_closed_to_hosts_that_are_not_web_hosts(redis_host, lb):
    address = redis_host.vars["private_address"]
    # The controller (the docker host, on the scenario's network) ...
    with pytest.raises(OSError):
        socket.create_connection((address, REDIS_PORT), timeout=4).close()
    # ... and the load balancer, on the private network itself.
    assert not lb.can_connect(address, REDIS_PORT)


def test_redis_admits_the_web_hosts_with_the_password_only(redis_host, webs, redis_password):
    address = redis_host.vars["private_address"]
    for web in webs:
        assert web.can_connect(address, REDIS_PORT), web.name
    web = webs[0]
    assert redis_replies(web, address)[0].startswith("-NOAUTH"), web.name
    wrong = redis_replies(web, address, "not-the-password-at-all")
    assert wrong[0].startswith("-WRONGPASS"), wrong
    assert wrong[1].startswith("-NOAUTH"), wrong
    assert redis_replies(web, address, redis_password) == ["+OK", "+PONG"]


# --- the URI: in the .env, never in the log ------------------------------------

def test_web_hosts_env_file_names_the_store_and_keeps_it_private(webs, redis_host, redis_password):
    uri = f"redis://:{redis_password}@{redis_host.vars['private_address']}:{REDIS_PORT}/0"
    for web in webs:
        with web.host.sudo():
            env = web.host.file(ENV_FILE)
            assert env.user == "forum" and env.group == "forum", web.name
            assert env.mode & 0o137 == 0, (web.name, oct(env.mode))
            lines = env.content_string.splitlines()
        assert f'RATELIMIT_STORAGE_URI="{uri}"' in lines, web.name
        assert 'FORUM_LOGIN_ACCOUNT_RATE_LIMIT="10 per minute"' in lines, web.name


def test_the_storage_uri_never_reaches_ansibles_output(webs, redis_password):
    """A changed limit rewrites the .env (check mode, with diffs and verbose
    output) and the settings checks run on every host: the password shows
    nowhere, neither alone nor inside the URI."""
    web = webs[0]
    deploy = testlib.run_playbook("playbooks/deploy.yml", "--check", "--diff", "-vv", "--limit", web.name,
                                  "-e", "forum_login_rate_limit='599 per minute'")
    assert deploy.returncode == 0, deploy.stdout[-4000:]
    env_task = deploy.stdout.split("TASK [forum : Write the app's environment file]")[1].split("TASK [")[0]
    assert f"changed: [{web.name}]" in env_task, env_task
    validate = testlib.run_playbook("playbooks/validate.yml", "-vv")
    assert validate.returncode == 0, validate.stdout[-4000:]
    for result in (deploy, validate):
        assert redis_password not in result.stdout + result.stderr
