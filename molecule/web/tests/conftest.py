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
        self.server = self.vars.get("forum_server", "gunicorn")


def _nodes(group):
    names = RUNNER.get_hosts(group)
    if not names:
        pytest.skip(f"no host in group {group}")
    return [Node(name) for name in names]


@pytest.fixture(scope="session")
def webs():
    return _nodes("web")


@pytest.fixture(scope="session", params=["gunicorn", "uwsgi"])
def web(request, webs):
    """Each application server variant in turn."""
    for node in webs:
        if node.server == request.param:
            return node
    pytest.fail(f"no web host with forum_server={request.param}")
    return None


@pytest.fixture(scope="session")
def inventory():
    return os.path.dirname(INVENTORY) if os.path.isfile(INVENTORY) else INVENTORY
