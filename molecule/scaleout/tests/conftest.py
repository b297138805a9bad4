"""Hosts of the scenario, by inventory group, reached the way Ansible
reaches them (over SSH as the deploy user; see molecule/shared/testlib.py)."""
import os
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared"))
from testlib import INVENTORY, nodes  # noqa: E402


@pytest.fixture(scope="session")
def lb():
    return nodes("lb")[0]


@pytest.fixture(scope="session")
def webs():
    return nodes("web")


@pytest.fixture(scope="session")
def db():
    return nodes("db")[0]


@pytest.fixture(scope="session")
def inventory():
    return os.path.dirname(INVENTORY) if os.path.isfile(INVENTORY) else INVENTORY
