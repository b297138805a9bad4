"""A load balancer in front of three web hosts: the site through it, every
web host used, a failed web host skipped, the web hosts closed to everyone
but the load balancer, and a rolling deploy under load through it."""
import http.client
import re
import socket
import sys
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
import deploy_under_load as bench  # noqa: E402
import testlib  # noqa: E402  (the scenario conftest put it on sys.path)
import webcheck  # noqa: E402

WEB_LOG = "/var/log/nginx/access.log"


def request(address, path="/", scheme="https", host=None, headers=None):
    """testlib.request with the body as text (a busy lab answers slower)."""
    status, headers, body = testlib.request(address, path, scheme, host, headers, timeout=30)
    return status, headers, body.decode()


def marked_requests(lb, count, path="/healthz", headers=None):
    """`count` requests through the load balancer, each with a unique query
    string; returns (marker, statuses)."""
    marker = f"probe-{uuid.uuid4().hex}"
    statuses = [request(lb.address, f"{path}?{marker}={n}", headers=headers)[0] for n in range(count)]
    return marker, statuses


def log_lines(node, marker):
    """The web or lb host's nginx access log lines of the marked requests."""
    with node.host.sudo():
        out = node.host.run(f"grep -F -- '{marker}' {WEB_LOG}").stdout
    return out.splitlines()


def served(node, marker):
    """How many marked requests this web host answered with 200."""
    return sum(1 for line in log_lines(node, marker) if '" 200 ' in line)


# --- the site, through the load balancer ----------------------------------

def test_forum_is_served_through_the_load_balancer(lb):
    status, headers, body = request(lb.address)
    assert status == 200
    assert "<title>" in body and "Forum" in body
    # Boards live in PostgreSQL; the security headers come from the web vhost.
    assert "General" in body
    assert headers.get("x-content-type-options") == "nosniff"
    assert headers.get("server", "").startswith("nginx")


def test_load_balancer_redirects_http_to_https(lb):
    status, headers, _ = request(lb.address, "/topics?x=1", scheme="http")
    assert status == 301
    assert headers["location"] == f"https://{lb.address}/topics?x=1"


def test_load_balancer_gives_unknown_hosts_no_answer(lb):
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        request(lb.address, host="not-this-forum.example")


def test_requests_reach_every_web_host(lb, webs):
    marker, statuses = marked_requests(lb, 30)
    assert statuses == [200] * 30
    counts = {web.name: served(web, marker) for web in webs}
    assert all(counts.values()), counts
    assert sum(counts.values()) == 30


def test_web_hosts_see_the_client_address_not_the_load_balancer(lb, webs):
    # The client's own X-Forwarded-For is kept in front; the web hosts trust
    # only the address the load balancer appended.
    marker, statuses = marked_requests(lb, 6, headers={"X-Forwarded-For": "203.0.113.7"})
    assert statuses == [200] * 6
    client = {line.split()[0] for line in log_lines(lb, marker)}
    assert len(client) == 1 and lb.address not in client
    seen = {line.split()[0] for web in webs for line in log_lines(web, marker)}
    assert seen == client


def test_web_hosts_got_one_wheelhouse_or_used_the_index(webs):
    # forum_wheelhouse (default true): the controller downloaded the wheels
    # once per CPython version (Debian 12: 3.11 on scale-web1, Debian 13:
    # 3.13 on scale-web2) and each such host got the file of its version;
    # scale-web3 has it false and built from the package index (it serves:
    # see the tests above). That the
    # shipped wheels install with no network at all is test_web.py's test.
    sums, tags = {}, {}
    for web in webs:
        with web.host.sudo():
            tar = web.host.file("/srv/forum/shared/cache/wheelhouse.tar")
            sums[web.name] = tar.sha256sum if tar.exists else None
            if tar.exists:
                names = web.host.check_output("tar -tf /srv/forum/shared/cache/wheelhouse.tar").split()
                # Wheels built for one CPython ABI (not abi3): -cpXY-cpXY-.
                tags[web.name] = {m.group(1) for m in map(re.compile(r"-(cp3\d+)-cp3\d+-").search, names) if m}
        tags[web.name + " python"] = "cp" + web.host.check_output(
            "python3 -c 'import sys; print(\"%d%d\" % sys.version_info[:2])'")
    shipped = {web.name for web in webs if web.vars.get("forum_wheelhouse", True)}
    assert {name for name, digest in sums.items() if digest} == shipped
    assert len(shipped) == 2 and len({sums[name] for name in shipped}) == 2, sums
    for name in shipped:
        # MarkupSafe, psycopg-binary, greenlet ...: built per CPython version.
        assert tags[name] == {tags[name + " python"]}, (name, tags)
    assert len({tags[name + " python"] for name in shipped}) == 2, tags


# --- a failed web host -----------------------------------------------------

def test_a_stopped_app_server_costs_no_request(lb, webs):
    down = webs[1]
    with down.host.sudo():
        down.host.run_test("systemctl stop forum.socket forum.service")
    try:
        # Its nginx answers 502 now: the load balancer sends each such request
        # on to another web host and rests this one.
        marker, statuses = marked_requests(lb, 30, path="/")
        assert statuses == [200] * 30
        assert served(down, marker) == 0
        assert sum(served(web, marker) for web in webs) == 30
    finally:
        with down.host.sudo():
            down.host.run_test("systemctl start forum.socket forum.service")
    # Back in the rotation once its fail_timeout is over.
    deadline = time.monotonic() + 120
    while True:
        marker, statuses = marked_requests(lb, 6)
        assert statuses == [200] * 6
        if served(down, marker) or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert served(down, marker) > 0


# --- firewall: the web hosts admit the load balancer only -------------------

@pytest.mark.parametrize("port", [80, 443])
def test_web_hosts_admit_http_only_from_the_load_balancer(lb, webs, db, port):
    for web in webs:
        assert lb.can_connect(web.vars["private_address"], port), web.name
        assert not db.can_connect(web.address, port), web.name
        with pytest.raises(OSError):
            socket.create_connection((web.address, port), timeout=4).close()


def test_rules_the_stack_roles_once_added_themselves_are_dropped(lb, webs, db):
    """A host converged when nginx opened its own ports holds ufw rules with
    the comment `forum-stack nginx`, which the firewall role never touches:
    the harden play deletes them, so a web host behind the load balancer is
    closed to everyone else again, and the load balancer still gets in."""
    web = webs[0]
    with web.host.sudo():
        web.host.run_test("ufw allow 80/tcp comment 'forum-stack nginx'")
        web.host.run_test(f"ufw allow from {db.vars['private_address']} to any port 443 proto tcp "
                          f"comment 'forum-stack nginx: 443/tcp from {db.vars['private_address']}'")
    assert db.can_connect(web.vars["private_address"], 80)
    result = testlib.run_playbook("playbooks/harden.yml", "--tags", "firewall", "--limit", web.name)
    assert result.returncode == 0, result.stdout[-3000:]
    with web.host.sudo():
        added = web.host.check_output("ufw show added")
    assert "forum-stack nginx" not in added, added
    for port in (80, 443):
        assert not db.can_connect(web.vars["private_address"], port), port
        assert lb.can_connect(web.vars["private_address"], port), port
    again = testlib.run_playbook("playbooks/harden.yml", "--tags", "firewall", "--limit", web.name)
    assert again.returncode == 0 and testlib.recap(again.stdout)[web.name]["changed"] == 0, again.stdout[-3000:]


# --- a rolling deploy through the load balancer ----------------------------

def test_rolling_deploy_through_the_load_balancer_loses_no_request(lb, webs, inventory):
    """The deploy goes one web host at a time (the default), the rollback two
    at a time: the load balancer keeps every request served either way, on
    Gunicorn and uWSGI alike; the rollback reads the release to go back to
    from `previous` and records the rolled-back one there."""
    figures = bench.run(inventory, threads=2, max_seconds=900, targets=[lb.address],
                        read_releases=webcheck.served_releases(webs),
                        rollback_extra=("-e", "forum_deploy_serial=2"))
    print("\nDEPLOY THROUGH THE LOAD BALANCER:", {k: v for k, v in figures.items() if k != "by_url"})
    before, deployed, rolled_back = figures["before"], figures["after_deploy"], figures["after_rollback"]
    assert figures["deploy_rc"] == 0
    assert figures["rollback_rc"] == 0
    assert len(set(before.values())) == 1
    assert len(set(deployed.values())) == 1 and set(deployed.values()) != set(before.values())
    assert rolled_back == before
    assert figures["requests"] > 50
    assert figures["failed"] == 0, figures["failures"]
    assert set(figures["by_url"]) == {f"{lb.address}{path}" for path in bench.PATHS}
    new = next(iter(deployed.values()))
    for web in webs:
        assert web.host.check_output("basename $(readlink /srv/forum/previous)") == new, web.name

