"""Hosts of the scenario, by inventory group, reached the way Ansible
reaches them (over SSH as the deploy user)."""
import os
import subprocess

import pytest
import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
RUNNER = AnsibleRunner(INVENTORY)


class Node:
    """A test host: its testinfra handle plus the variables Ansible uses."""

    def __init__(self, name):
        self.name = name
        self.vars = RUNNER.get_variables(name)
        self.host = testinfra.get_host(f"ansible://{name}", ansible_inventory=INVENTORY)
        self.address = self.vars["ansible_host"]

    def ssh(self, user, command="true", *options):
        """Run `command` over a new SSH connection as `user` from the
        controller; returns the CompletedProcess (never raises)."""
        argv = [
            "ssh", "-i", self.vars["ansible_ssh_private_key_file"],
            "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
            "-o", "ControlMaster=no", "-o", "ControlPath=none",
            *self.vars.get("ansible_ssh_common_args", "").split(),
            *options, f"{user}@{self.address}", command,
        ]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def _nodes(group):
    names = RUNNER.get_hosts(group)
    if not names:
        pytest.skip(f"no host in group {group}")
    return [Node(name) for name in names]


@pytest.fixture(scope="session")
def web():
    return _nodes("web")[0]


@pytest.fixture(scope="session")
def db():
    return _nodes("db")[0]


@pytest.fixture(scope="session")
def all_nodes():
    return _nodes("all")
