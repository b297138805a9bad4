"""The redis role alone: only the application's password gets in, the
application's user cannot run dangerous commands, Redis listens where it
was told only, keeps all of it across a restart, and a wrong value stops
the run before anything on the host changes."""
import json
import time

import pytest
from conftest import redis_commands
from roletest import assert_refused, converge, fingerprint
from testlib import assert_check_mode_reports_no_change

MANAGED = ["/etc/redis/redis.conf", "/usr/local/sbin/redis-check-config"]


def test_check_mode_on_the_converged_host_reports_no_change():
    assert_check_mode_reports_no_change()


def test_a_command_without_the_password_is_refused(node):
    assert redis_commands(node.address, node.port, ("PING",), ("GET", "x"))[0].startswith("-NOAUTH")
    result = node.cli("", "PING")
    assert "NOAUTH" in result.stdout + result.stderr


def test_a_wrong_password_is_refused(node, password):
    replies = redis_commands(node.address, node.port, ("AUTH", password[:-1] + "x"), ("PING",))
    assert replies[0].startswith("-WRONGPASS"), replies
    assert replies[1].startswith("-NOAUTH"), replies
    # The legacy form with a user name, and another user's name, alike.
    replies = redis_commands(node.address, node.port, ("AUTH", "admin", password), ("PING",))
    assert replies[0].startswith("-WRONGPASS"), replies


def test_the_password_works_for_what_a_rate_limiter_does(node, password):
    replies = redis_commands(
        node.address, node.port,
        ("AUTH", password),
        ("SET", "molecule:x", "1", "EX", "60"),
        ("INCR", "molecule:x"),
        ("TTL", "molecule:x"),
        ("EVAL", "return redis.call('INCR', KEYS[1])", "1", "molecule:x"),
        ("DEL", "molecule:x"))
    assert replies == ["+OK", "+OK", ":2", replies[3], ":3", ":1"], replies
    assert 0 < int(replies[3][1:]) <= 60
    # From the host itself, over loopback, too.
    assert node.cli(password, "PING").stdout.strip() == "PONG"


@pytest.mark.parametrize("command", [
    ("FLUSHALL",), ("FLUSHDB",), ("CONFIG", "GET", "requirepass"), ("CONFIG", "SET", "protected-mode", "no"),
    ("KEYS", "*"), ("DEBUG", "SLEEP", "0"), ("MONITOR",), ("REPLICAOF", "127.0.0.1", "1"), ("ACL", "LIST"),
    ("SAVE",),
])
def test_the_application_user_cannot_run_dangerous_commands(node, password, command):
    replies = redis_commands(node.address, node.port, ("AUTH", password), ("SET", "molecule:keep", "1"), command,
                             ("GET", "molecule:keep"))
    assert replies[:2] == ["+OK", "+OK"], replies
    # DEBUG is refused before the ACL by Redis itself (enable-debug-command no).
    assert replies[2].startswith(("-NOPERM", "-ERR DEBUG command not allowed")), replies
    assert replies[3] == "$1", replies


def listening(node):
    """The local addresses Redis listens on."""
    with node.host.sudo():
        out = node.host.check_output(f"ss -ltnH 'sport = :{node.port}'")
    return sorted(line.split()[3].rsplit(":", 1)[0] for line in out.splitlines())


def expected_addresses(node):
    has_ipv6_loopback = node.host.run("ip -6 addr show dev lo | grep -q 'inet6 ::1'").rc == 0
    return sorted(["127.0.0.1", node.vars["private_address"]] + (["[::1]"] if has_ipv6_loopback else []))


def test_redis_listens_on_loopback_and_the_private_address_only(node):
    assert listening(node) == expected_addresses(node)


def test_the_host_keeps_no_password_only_its_hash(node, password):
    with node.host.sudo():
        conf = node.host.file("/etc/redis/redis.conf")
        assert conf.user == "redis" and conf.mode == 0o640
        assert password not in conf.content_string
        assert "maxmemory 64mb" in conf.content_string.splitlines()
        assert "maxmemory-policy volatile-ttl" in conf.content_string.splitlines()
        assert 'save ""' in conf.content_string.splitlines()


def test_a_restart_keeps_every_setting(node, password):
    with node.host.sudo():
        pid = node.host.check_output("systemctl show -P MainPID redis-server")
        node.host.check_output("systemctl restart redis-server")
        for _ in range(20):
            if node.host.run("systemctl is-active redis-server").stdout.strip() == "active":
                break
            time.sleep(0.5)
        assert node.host.check_output("systemctl show -P MainPID redis-server") != pid
        assert node.host.service("redis-server").is_enabled
    assert listening(node) == expected_addresses(node)
    assert redis_commands(node.address, node.port, ("PING",))[0].startswith("-NOAUTH")
    replies = redis_commands(node.address, node.port, ("AUTH", password), ("PING",), ("FLUSHALL",))
    assert replies[:2] == ["+OK", "+PONG"] and replies[2].startswith("-NOPERM"), replies


@pytest.mark.parametrize("variable, value", [
    ("redis_maxmemory", "lots"),
    ("redis_maxmemory", "64mb\nrequirepass x"),
    ("redis_app_acl_commands", "+@all\nuser evil on nopass ~* +@all"),
    ("redis_bind_addresses", ["0.0.0.0"]),
    ("redis_bind_addresses", ["10.255.255.1"]),
    ("redis_port", 70000),
    ("redis_password", "short"),
])
def test_a_wrong_value_fails_before_any_change(node, variable, value):
    before = fingerprint(node, MANAGED)
    result = converge("-e", json.dumps({variable: value}))
    assert_refused(result, [variable], node, before, MANAGED)
    if variable == "redis_password":
        assert "short" not in result.stdout + result.stderr
