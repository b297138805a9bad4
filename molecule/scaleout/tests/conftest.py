"""Hosts of the scenario, by inventory group, reached the way Ansible
reaches them (over SSH as the deploy user; see molecule/shared/testlib.py)."""
import os
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared"))
from testlib import INVENTORY, Node, nodes  # noqa: E402


class WebNode(Node):
    """A web host and the application server it runs."""

    def __init__(self, name):
        super().__init__(name)
        self.server = self.vars.get("forum_server", "gunicorn")


@pytest.fixture(scope="session")
def lb():
    return nodes("lb")[0]


@pytest.fixture(scope="session")
def webs():
    return nodes("web", WebNode)


@pytest.fixture(scope="session", params=["gunicorn", "uwsgi"])
def web(request, webs):
    """Each application server variant in turn (Gunicorn on Debian 12, uWSGI
    on Debian 13: molecule.yml), the first web host that runs it."""
    for node in webs:
        if node.server == request.param:
            return node
    pytest.fail(f"no web host with forum_server={request.param}")
    return None


@pytest.fixture(scope="session")
def db():
    return nodes("db")[0]


@pytest.fixture(scope="session")
def inventory():
    return os.path.dirname(INVENTORY) if os.path.isfile(INVENTORY) else INVENTORY
