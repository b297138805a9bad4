"""The fail2ban role alone on a fresh Debian 12 host: the sshd jail bans a
source after failed logins and the packet filter really drops it, the
controller is never banned, and wrong input changes nothing."""
import json
import time

import pytest

from roletest import assert_refused, converge, fingerprint
from testlib import assert_check_mode_reports_no_change

MANAGED = ["/etc/fail2ban/jail.local", "/etc/fail2ban/jail.d/*"]
MAXRETRY = 5  # the role's default


def banned(node):
    with node.host.sudo():
        return node.host.check_output("fail2ban-client get sshd banned")


def fail_logins(node, source, count):
    """`count` refused logins of a user that does not exist, from `source`
    (an address of the host) to the host's address, one after the other.
    Each is cut off after 15 s: a ban that lands while a connection is open
    rejects its packets, and TCP would retry for a quarter of an hour."""
    script = (
        f"for i in $(seq {count}); do timeout 15 ssh -b {source} -o BatchMode=yes -o StrictHostKeyChecking=no "
        f"-o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 nosuchuser@{node.address} true; done; true")
    node.host.run(script)


def connects_from(node, source, port=22):
    """Whether a TCP connection from `source` to the host's address opens."""
    script = (
        "import socket, sys\n"
        "try:\n"
        f"    socket.create_connection(('{node.address}', {port}), timeout=4, source_address=('{source}', 0)).close()\n"
        "except OSError:\n"
        "    sys.exit(3)\n"
    )
    result = node.host.run(f"python3 -c \"{script}\"")
    assert result.rc in (0, 3), result.stderr
    return result.rc == 0


@pytest.fixture()
def other_source(node):
    """A second address on the host, standing for another machine: fail2ban
    never bans the host's own main address (ignoreself) nor loopback, and
    the controller is in ignoreip."""
    address = node.address.rsplit(".", 1)[0] + ".99"
    with node.host.sudo():
        node.host.check_output(f"ip addr add {address}/32 dev eth0")
    yield address
    with node.host.sudo():
        node.host.run(f"fail2ban-client set sshd unbanip {address}; ip addr del {address}/32 dev eth0")


def test_the_sshd_jail_reads_the_journal(node):
    with node.host.sudo():
        status = node.host.check_output("fail2ban-client status sshd")
    assert "Journal matches:" in status and "sshd" in status, status


def test_failed_logins_get_the_source_banned_and_dropped(node, other_source):
    assert connects_from(node, other_source), "sshd must answer before the ban"
    fail_logins(node, other_source, MAXRETRY)
    deadline = time.monotonic() + 30
    while other_source not in banned(node) and time.monotonic() < deadline:
        time.sleep(1)
    assert other_source in banned(node), "the sshd jail did not ban the source"
    # The ban is in the packet filter: that source cannot even connect, the
    # host's own address still can, and so can the controller.
    assert not connects_from(node, other_source), "the banned source still reaches sshd"
    assert connects_from(node, node.address)
    assert node.ssh("root", "true").returncode == 0
    with node.host.sudo():
        node.host.check_output(f"fail2ban-client set sshd unbanip {other_source}")
    assert connects_from(node, other_source), "unbanning did not lift the block"


def test_the_controller_is_never_banned(node):
    # The run's own address (the network's gateway, as the host sees it) is
    # in ignoreip: failures from it count for nothing, its next login works.
    controller = node.host.check_output("ip -4 route show default").split()[2]
    for _ in range(MAXRETRY + 1):
        node.ssh("nosuchuser")
    time.sleep(5)  # the jail above banned within a second or two
    assert controller not in banned(node)
    assert node.ssh("root", "true").returncode == 0


def test_check_mode_on_the_converged_host_reports_no_change():
    assert_check_mode_reports_no_change()


# --- wrong input: refused before anything changes --------------------------------

BROKEN = {
    "a find time that smuggles a section": ({"fail2ban_findtime": "10m\n[sshd]"}, ["fail2ban_findtime"]),
    "an ignore entry that is two": ({"fail2ban_ignoreip": ["0.0.0.0/0 ::/0"]}, ["fail2ban_ignoreip"]),
    "no retries": ({"fail2ban_maxretry": 0}, ["fail2ban_maxretry must be positive"]),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_wrong_input_is_refused_before_any_change(node, case):
    extra, names = BROKEN[case]
    before = fingerprint(node, MANAGED)
    result = converge("-e", json.dumps(extra))
    assert_refused(result, names, node, before, MANAGED)
