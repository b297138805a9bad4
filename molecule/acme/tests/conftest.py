"""The hosts of the acme scenario: pebble (the lab's ACME server), the web
host running the nginx role alone and the load balancer in front of it
running the loadbalancer role alone, reached the way Ansible reaches them
(see molecule/shared/testlib.py)."""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared"))
from testlib import Node, nodes  # noqa: E402


@pytest.fixture(scope="session")
def web():
    return nodes("web", Node)[0]


@pytest.fixture(scope="session")
def pebble():
    return nodes("pebble", Node)[0]


@pytest.fixture(scope="session")
def lb():
    return nodes("lb", Node)[0]
