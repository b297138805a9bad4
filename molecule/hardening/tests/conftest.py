"""Hosts of the hardening scenario, reached the way Ansible reaches them
(over SSH as the deploy user; see molecule/shared/testlib.py), plus helpers
to open deliberately NEW connections and to run the hardening playbook
against the scenario."""
import pathlib
import re
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared"))
# recap is imported by the tests from here.
from testlib import RUNNER, Node, nodes, recap, run_playbook  # noqa: E402,F401

# sshd (OpenSSH 9.8+) refuses new connections from a source for a few
# seconds after a failed login; wait this long after provoking one.
PENALTY_SECONDS = 7


class HardenedNode(Node):
    """A hardened host: sshd's settings and fail2ban's counters."""

    ssh_connect_timeout = 10

    def sshd_config(self):
        """sshd's effective configuration (`sshd -T`) as a dict."""
        with self.host.sudo():
            text = self.host.check_output("/usr/sbin/sshd -T")
        return dict(line.split(" ", 1) for line in text.splitlines() if " " in line)

    def fail2ban_failed_total(self):
        with self.host.sudo():
            text = self.host.check_output("fail2ban-client status sshd")
        return int(re.search(r"Total failed:\s+(\d+)", text).group(1))


def run_harden(*args, timeout=600):
    """ansible-playbook playbooks/harden.yml against this scenario."""
    return run_playbook("playbooks/harden.yml", *args, timeout=timeout)


def wait_penalty():
    time.sleep(PENALTY_SECONDS)


@pytest.fixture(scope="session")
def all_nodes():
    return nodes("all", HardenedNode)


@pytest.fixture(scope="session")
def web():
    return nodes("edge", HardenedNode)[0]


@pytest.fixture(scope="session")
def db():
    return nodes("internal", HardenedNode)[0]


def pytest_generate_tests(metafunc):
    """Run `node` tests once per host (Debian 12 and Debian 13)."""
    if "node" in metafunc.fixturenames:
        names = RUNNER.get_hosts("all")
        metafunc.parametrize("node", [HardenedNode(name) for name in names], ids=names, scope="session")
