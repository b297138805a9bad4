"""Faults, in this order: the database host restarts under load, the web
host reboots, site.yml then runs again and changes nothing, and an
operator's typo stops site.yml before it changes anything.

Every test here is `disruptive`: the conftest runs them after all other
tests, in the order of this module."""
import hashlib
import json
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
from testlib import recap, run_playbook

pytestmark = pytest.mark.disruptive

# The lab's certificate is self-signed.
INSECURE = ssl._create_unverified_context()  # noqa: S323
OUTAGE_PAGE = "The forum is temporarily unavailable"
# How long a restarted host may take to serve the forum again.
RECOVERY_SECONDS = 240


def fetch(url, timeout=15):
    """(status, body) of one GET; status None when no HTTP answer came."""
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=INSECURE) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except OSError as error:
        return None, repr(error)


def wait_for_page(url, seconds=RECOVERY_SECONDS):
    """Poll `url` (over HTTPS, not SSH: ufw rate-limits new SSH connections)
    until it answers 200; returns the seconds that took."""
    start = time.monotonic()
    status = body = None
    while time.monotonic() - start < seconds:
        status, body = fetch(url, timeout=10)
        if status == 200:
            return time.monotonic() - start
        time.sleep(2)
    raise AssertionError(f"{url} did not answer 200 within {seconds} s (last: {status} {body[:200]})")


class Load(threading.Thread):
    """Requests pages through nginx until stopped (at most `seconds`); each
    URL is new, so the anonymous page cache never answers for the database."""

    def __init__(self, base, seconds=600):
        super().__init__(daemon=True)
        self.base, self.seconds = base, seconds
        self.results = []  # (monotonic time, status, body)
        self.stopped = threading.Event()

    def run(self):
        start, n = time.monotonic(), 0
        while not self.stopped.is_set() and time.monotonic() - start < self.seconds:
            n += 1
            status, body = fetch(f"{self.base}/?load={n}")
            self.results.append((time.monotonic(), status, body))
            self.stopped.wait(0.25)

    def since(self, moment):
        return [(status, body) for at, status, body in self.results if at >= moment]


def docker_restart(name, down_seconds=0):
    """Restart a test host's container, keeping it down `down_seconds` in
    between (a restart alone can be shorter than the app's 5 s database
    connect timeout: the requests then just wait and succeed)."""
    if not down_seconds:
        subprocess.run(["docker", "restart", name], capture_output=True, text=True, timeout=300, check=True)
        return
    subprocess.run(["docker", "stop", name], capture_output=True, text=True, timeout=300, check=True)
    time.sleep(down_seconds)
    subprocess.run(["docker", "start", name], capture_output=True, text=True, timeout=300, check=True)


def unit_state(node, unit):
    return node.host.run(f"systemctl show -p ActiveState,MainPID,ActiveEnterTimestampMonotonic {unit}").stdout


def test_forum_says_503_while_the_database_restarts_and_recovers_alone(web, db):
    base = f"https://{web.address}"
    assert fetch(f"{base}/")[0] == 200
    app_before = unit_state(web, "forum.service")
    load = Load(base)
    load.start()
    try:
        docker_restart(db.name, down_seconds=12)
        restarted = time.monotonic()
        # The first 200 after the database host is back, with nobody
        # touching the web host.
        deadline = restarted + RECOVERY_SECONDS
        while time.monotonic() < deadline and not any(s == 200 for s, _ in load.since(restarted)):
            time.sleep(1)
    finally:
        load.stopped.set()
        load.join(60)
    statuses = [status for _, status, _ in load.results]
    summary = {str(s): statuses.count(s) for s in set(statuses)}
    outage = [body for _, status, body in load.results if status == 503]
    assert outage, f"no 503 during the outage: {summary}"
    assert all(OUTAGE_PAGE in body and "<html" in body for body in outage), outage[0][:500]
    assert any(s == 200 for s, _ in load.since(restarted)), f"no recovery within {RECOVERY_SECONDS} s: {summary}"
    # Only the forum's own answers: no gateway error from nginx, no hang.
    assert set(statuses) <= {200, 503}, summary
    # The app server was neither restarted nor reloaded.
    assert unit_state(web, "forum.service") == app_before
    print(f"database restart seen through nginx: {summary}")


def test_web_host_comes_back_after_a_reboot(web):
    base = f"https://{web.address}"
    docker_restart(web.name)
    took = wait_for_page(f"{base}/")
    print(f"the forum answered {took:.0f} s after the reboot")
    with web.host.sudo():
        for unit in ("nginx", "forum.socket", "forum.service", "ufw", "fail2ban", "ssh"):
            service = web.host.service(unit)
            assert service.is_enabled, unit
            assert service.is_running, unit
        assert "Status: active" in web.host.check_output("ufw status")
        assert "sshd" in web.host.check_output("fail2ban-client status")
        # The rules are loaded again: a port nothing allows stays closed even
        # with something listening on it.
        web.host.check_output(
            "systemd-run --unit stack-listen-8081 --property RuntimeMaxSec=120 "
            "python3 -m http.server 8081 --bind 0.0.0.0 --directory /srv")
        try:
            listening = False
            for _ in range(20):
                listening = web.host.socket("tcp://0.0.0.0:8081").is_listening
                if listening:
                    break
                time.sleep(0.5)
            assert listening
            status, body = fetch(f"http://{web.address}:8081/", timeout=5)
            assert status is None, (status, body[:200])
        finally:
            web.host.run("systemctl stop stack-listen-8081")
    assert fetch(f"{base}/healthz")[0] == 200


def test_site_yml_changes_nothing_after_the_reboots(all_nodes):
    result = run_playbook("site.yml", timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:]
    counts = recap(result.stdout)
    assert set(counts) == {node.name for node in all_nodes}, result.stdout[-2000:]
    for host, numbers in counts.items():
        assert numbers["changed"] == 0 and numbers["failed"] == 0, (host, numbers)


# Files a run of site.yml would change first on each host.
KEY_FILES = (
    "/etc/ssh/sshd_config /etc/ssh/sshd_config.d/* /etc/ufw/user.rules /etc/fail2ban/jail.d/* "
    "/etc/nginx/nginx.conf /etc/nginx/sites-enabled/* /etc/systemd/system/forum.* "
    "/srv/forum/shared/.env /etc/postgresql/*/main/*.conf"
)

# typo: (extra vars, words the error must contain, words it must not: the
# other settings checked in the same task are not blamed). Two roles' typos
# are named together: every role is checked before the run stops.
TYPOS = {
    "app server": ({"forum_server": "gunicron"}, ["forum_server", "gunicron"], []),
    "https port and a fail2ban limit": (
        {"nginx_https_port": 70000, "fail2ban_maxretry": 0},
        ["fail2ban: fail2ban_maxretry must be positive (got 0).", "nginx: nginx_https_port = 70000"],
        ["nginx_http_port must", "nginx_server_names", "nginx_client_max_body_size", "fail2ban_bantime"]),
}


def checksums(node):
    with node.host.sudo():
        text = node.host.run(f"sha256sum {KEY_FILES} 2>/dev/null").stdout
    return hashlib.sha256(text.encode()).hexdigest(), len(text.splitlines())


@pytest.mark.parametrize("typo", list(TYPOS), ids=list(TYPOS))
def test_a_typo_stops_site_yml_before_any_change(typo, all_nodes):
    extra, words, blameless = TYPOS[typo]
    before = {node.name: checksums(node) for node in all_nodes}
    assert all(count >= 3 for _, count in before.values()), before
    result = run_playbook("site.yml", "-e", json.dumps(extra), timeout=900)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output[-2000:]
    for word in words:
        assert word in output, output[-3000:]
    for word in blameless:
        assert word not in output, output[-3000:]
    # Early: in the checks before the first play that changes anything.
    assert "PLAY [Harden all hosts]" not in output, output[-3000:]
    for host, numbers in recap(result.stdout).items():
        assert numbers["changed"] == 0, (host, numbers)
    assert {node.name: checksums(node) for node in all_nodes} == before
