"""Hosts of the replica scenario: replica-db1 (the primary until the failover
test), replica-db2 (its synchronous hot standby) and replica-web1 (nginx and
the forum), reached the way Ansible reaches them (molecule/shared/testlib.py)."""
import pathlib
import shlex
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared"))
from testlib import Node, nodes  # noqa: E402

SERVICE = "postgresql@15-main"
DATA_DIRECTORY = "/var/lib/postgresql/15/main"


class DbNode(Node):
    """A database host: SQL as the postgres superuser."""

    def run_sql(self, query, database="forum"):
        with self.host.sudo("postgres"):
            return self.host.run(f"psql -XAt -v ON_ERROR_STOP=1 -d {database} -c {shlex.quote(query)}")

    def sql(self, query, database="forum"):
        result = self.run_sql(query, database)
        assert result.rc == 0, f"{self.name}: {query}: {result.stderr}"
        return result.stdout.strip()


@pytest.fixture(scope="session")
def db1():
    return next(n for n in nodes("db", DbNode) if n.name == "replica-db1")


@pytest.fixture(scope="session")
def db2():
    return next(n for n in nodes("db_replica", DbNode) if n.name == "replica-db2")


@pytest.fixture(scope="session")
def web():
    return nodes("web")[0]
