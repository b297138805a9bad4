"""The firewall role alone on a fresh Debian 12 host: what the controller
can reach (SSH, the rule asked for) and cannot (any other port, a rule for
another source), purging of the role's own rules only, and changes that
would cut SSH refused or undone."""
import json
import re

import pytest

from roletest import Listener, assert_refused, converge, fingerprint, reachable
from testlib import assert_check_mode_reports_no_change

MANAGED = ["/etc/ufw/user.rules", "/etc/ufw/user6.rules", "/etc/ufw/ufw.conf", "/etc/default/ufw"]


def test_ufw_is_on_and_denies_by_default(node):
    with node.host.sudo():
        status = node.host.check_output("ufw status verbose")
    assert "Status: active" in status
    assert "deny (incoming)" in status
    assert re.search(r"^22/tcp\s+LIMIT IN\s+Anywhere", status, re.M), status


def test_a_port_not_asked_for_is_closed_from_the_controller(node):
    with Listener(node, 8080):
        assert not reachable(node.address, 8080)


def test_a_rule_for_the_controller_admits_it(node):
    with Listener(node, 9100):
        assert reachable(node.address, 9100)


def test_a_rule_for_another_source_keeps_the_controller_out(node):
    with Listener(node, 9101):
        assert not reachable(node.address, 9101)


def test_the_controller_is_not_rate_limited(node):
    # ufw's `limit` refuses the 7th new connection within 30 s from one
    # source; the address the run came from has its own rule before it.
    results = [node.ssh("root", "true").returncode for _ in range(10)]
    assert results == [0] * 10, results


def test_check_mode_on_the_converged_host_reports_no_change():
    assert_check_mode_reports_no_change()


def test_rules_no_longer_asked_for_go_and_others_stay(node):
    # An admin's rule (no role prefix in its comment) survives the purge.
    with node.host.sudo():
        node.host.check_output("ufw allow 9200/tcp comment 'added by hand'")
    try:
        with Listener(node, 9100), Listener(node, 9200):
            result = converge("-e", json.dumps({"firewall_rules": []}))
            assert result.returncode == 0, result.stdout[-3000:]
            assert not reachable(node.address, 9100), "9100 still open after its rule left the inventory"
            assert reachable(node.address, 9200), "the hand-made rule was purged"
    finally:
        with node.host.sudo():
            node.host.run("ufw delete allow 9200/tcp")
        result = converge()
    assert result.returncode == 0, result.stdout[-3000:]
    with Listener(node, 9100):
        assert reachable(node.address, 9100)


# --- wrong input: refused before anything changes --------------------------------

BROKEN = {
    "a source that smuggles a port": (
        {"firewall_rules": [{"port": 9100, "from": "any to any port 22"}]}, ["firewall_rules[].from"]),
    "a port out of range": ({"firewall_rules": [{"port": 70000}]}, ["firewall_rules: rule", "port must be 1-65535"]),
    "a comment with a quote": (
        {"firewall_rules": [{"port": 9100, "comment": "x' y"}]}, ["firewall_rules[].comment"]),
    "an SSH port out of range": ({"firewall_ssh_port": 0}, ["firewall_ssh_port must be 1-65535"]),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_wrong_input_is_refused_before_any_change(node, case):
    extra, names = BROKEN[case]
    before = fingerprint(node, MANAGED)
    result = converge("-e", json.dumps(extra))
    assert_refused(result, names, node, before, MANAGED)


# --- a change that cuts SSH is undone --------------------------------------------


@pytest.fixture()
def forwarded_port(node):
    """Port 2200 forwarded to sshd inside the host, as a provider's port
    forward or a NAT gateway would: ufw sees the connections on 22."""
    rule = "PREROUTING -p tcp --dport 2200 -j REDIRECT --to-ports 22"
    with node.host.sudo():
        node.host.check_output(f"iptables -t nat -I {rule}")
    yield 2200
    with node.host.sudo():
        node.host.run(f"iptables -t nat -D {rule}")


def test_an_ssh_port_that_is_not_the_one_sshd_sees_is_undone(node, forwarded_port):
    # The run comes in on 2200 and firewall_ssh_port says 2222: the role keeps
    # both open, drops 22, and so cuts every new login. The login it proves
    # after the change fails, ufw's previous rules and settings go back.
    assert node.ssh("root", "true", "-p", str(forwarded_port)).returncode == 0
    before = fingerprint(node, MANAGED)
    result = converge("-e", json.dumps({
        "firewall_ssh_port": 2222, "ansible_port": forwarded_port, "ansible_timeout": 10}))
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output[-3000:]
    assert "(firewall_ssh_port)" in output, output[-3000:]
    assert "ufw's previous rules and settings are back and a new login works again" in output, output[-3000:]
    assert fingerprint(node, MANAGED) == before
    assert node.ssh("root", "true").returncode == 0
    assert node.ssh("root", "true", "-p", str(forwarded_port)).returncode == 0
