"""Hosts of the replica scenario: replica-db1 (the primary until the failover
test), replica-db2 (its synchronous hot standby) and replica-web1 (nginx and
the forum), reached the way Ansible reaches them (molecule/shared/testlib.py)."""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared"))
from testlib import DbNode, nodes  # noqa: E402

SERVICE = "postgresql@15-main"
DATA_DIRECTORY = "/var/lib/postgresql/15/main"


@pytest.fixture(scope="session")
def db1():
    return next(n for n in nodes("db", DbNode) if n.name == "replica-db1")


@pytest.fixture(scope="session")
def db2():
    return next(n for n in nodes("db_replica", DbNode) if n.name == "replica-db2")


@pytest.fixture(scope="session")
def web():
    return nodes("web")[0]
