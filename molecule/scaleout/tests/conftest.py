"""Hosts of the scenario, by inventory group, reached the way Ansible
reaches them (over SSH as the deploy user)."""
import os

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

    def can_connect(self, address, port):
        """Whether a TCP connection from this host to address:port opens."""
        script = (
            "import socket, sys\n"
            "try:\n"
            f"    socket.create_connection(('{address}', {port}), timeout=4).close()\n"
            "except OSError:\n"
            "    sys.exit(3)\n"
        )
        result = self.host.run(f"python3 -c \"{script}\"")
        assert result.rc in (0, 3), result.stderr
        return result.rc == 0


def _nodes(group):
    names = RUNNER.get_hosts(group)
    if not names:
        pytest.skip(f"no host in group {group}")
    return [Node(name) for name in names]


@pytest.fixture(scope="session")
def lb():
    return _nodes("lb")[0]


@pytest.fixture(scope="session")
def webs():
    return _nodes("web")


@pytest.fixture(scope="session")
def db():
    return _nodes("db")[0]


@pytest.fixture(scope="session")
def inventory():
    return os.path.dirname(INVENTORY) if os.path.isfile(INVENTORY) else INVENTORY
