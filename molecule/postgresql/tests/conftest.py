"""Hosts of the postgresql scenario, reached the way Ansible reaches them
(over SSH as the deploy user; see molecule/shared/testlib.py), and a way to
run the repository's playbooks against them."""
import pathlib
import shlex
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared"))
from testlib import EPHEMERAL, Node, nodes, run_playbook  # noqa: E402

APP_DB = "forum"
APP_USER = "forum"


class DbNode(Node):
    """A database host: SQL as the superuser or as the app role."""

    def sql(self, query, database=APP_DB):
        """Run SQL as the postgres superuser (peer, local socket); returns
        the unaligned, tuples-only output."""
        with self.host.sudo("postgres"):
            return self.host.check_output(
                f"psql -XAt -v ON_ERROR_STOP=1 -d {database} -c {shlex.quote(query)}")

    def app_sql(self, server, query, password):
        """Run SQL as the app role over TCP from this host to `server`."""
        conninfo = f"host={server} user={APP_USER} dbname={APP_DB} connect_timeout=5"
        return self.host.run(
            f"PGPASSWORD={shlex.quote(password)} psql -XAt -v ON_ERROR_STOP=1 "
            f"{shlex.quote(conninfo)} -c {shlex.quote(query)}")

    def postmaster_pid(self):
        with self.host.sudo():
            return self.host.check_output(
                "head -n1 \"$(runuser -u postgres -- psql -XAtc 'show data_directory')/postmaster.pid\"")


def playbook(name, *args):
    """Run playbooks/<name> against the scenario's inventory."""
    return run_playbook(f"playbooks/{name}", *args)


@pytest.fixture(scope="session")
def app_password():
    return pathlib.Path(EPHEMERAL, "secrets", "db").read_text().strip()


@pytest.fixture(scope="session")
def web():
    return nodes("web", DbNode, sort=True)[0]


@pytest.fixture(scope="session")
def dbs():
    return nodes("db", DbNode, sort=True)


@pytest.fixture(scope="session")
def primary(dbs):
    """The Debian 12 db host, where the tests change things."""
    return dbs[0]
