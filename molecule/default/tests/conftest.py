"""Hosts of the scenario, by inventory group, reached the way Ansible
reaches them (over SSH as the deploy user; see molecule/shared/testlib.py).

Tests marked `disruptive` (they restart hosts or run playbooks) run after
every other test, in the order their module defines them."""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared"))
from testlib import nodes  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "disruptive: restarts hosts or services; runs last")


def pytest_collection_modifyitems(items):
    # A stable sort: the disruptive tests keep their module order, at the end.
    items.sort(key=lambda item: item.get_closest_marker("disruptive") is not None)


@pytest.fixture(scope="session")
def web():
    return nodes("web")[0]


@pytest.fixture(scope="session")
def db():
    return nodes("db")[0]


@pytest.fixture(scope="session")
def all_nodes():
    return nodes("all")
