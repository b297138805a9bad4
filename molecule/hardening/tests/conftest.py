"""Hosts of the hardening scenario, reached the way Ansible reaches them
(over SSH as the deploy user), plus helpers to open deliberately NEW
connections and to run the hardening playbook against the scenario."""
import os
import pathlib
import re
import subprocess
import time

import pytest
import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
RUNNER = AnsibleRunner(INVENTORY)
REPO = pathlib.Path(__file__).resolve().parents[3]

# sshd (OpenSSH 9.8+) refuses new connections from a source for a few
# seconds after a failed login; wait this long after provoking one.
PENALTY_SECONDS = 7


class Node:
    """A test host: its testinfra handle plus the variables Ansible uses."""

    def __init__(self, name):
        self.name = name
        self.vars = RUNNER.get_variables(name)
        self.host = testinfra.get_host(f"ansible://{name}", ansible_inventory=INVENTORY)
        self.address = self.vars["ansible_host"]
        self.key = self.vars["ansible_ssh_private_key_file"]

    def ssh(self, user, command="true", *options):
        """Run `command` over a NEW SSH connection as `user` from the
        controller; returns the CompletedProcess (never raises)."""
        argv = [
            "ssh", "-i", self.key,
            "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
            "-o", "ControlMaster=no", "-o", "ControlPath=none",
            *self.vars.get("ansible_ssh_common_args", "").split(),
            *options, f"{user}@{self.address}", command,
        ]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60)

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
    env = dict(os.environ,
               ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               ANSIBLE_ROLES_PATH=str(REPO / "roles"),
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    argv = ["ansible-playbook", "-i", INVENTORY, str(REPO / "playbooks" / "harden.yml"), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)


def recap(output):
    """PLAY RECAP counters per host: {host: {"ok": n, "changed": n, ...}}."""
    result = {}
    for line in output.splitlines():
        match = re.match(r"^\s*(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", line)
        if match:
            result[match.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(2))}
    return result


def wait_penalty():
    time.sleep(PENALTY_SECONDS)


def _nodes(group):
    names = RUNNER.get_hosts(group)
    if not names:
        pytest.skip(f"no host in group {group}")
    return [Node(name) for name in names]


@pytest.fixture(scope="session")
def all_nodes():
    return _nodes("all")


@pytest.fixture(scope="session")
def web():
    return _nodes("web")[0]


@pytest.fixture(scope="session")
def db():
    return _nodes("db")[0]


def pytest_generate_tests(metafunc):
    """Run `node` tests once per host (Debian 12 and Debian 13)."""
    if "node" in metafunc.fixturenames:
        names = RUNNER.get_hosts("all")
        metafunc.parametrize("node", [Node(name) for name in names], ids=names, scope="session")
