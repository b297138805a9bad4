"""Hosts of the postgresql scenario (the role alone on two db hosts, each
the other's only allowed client), reached the way Ansible reaches them (see
molecule/shared/testlib.py), and a way to re-run the scenario's converge."""
import os
import pathlib
import shlex
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared"))
from testlib import EPHEMERAL, DbNode as SuperuserNode, nodes, run_playbook, scenario_converge_playbook  # noqa: E402

APP_DB = "forum"
APP_USER = "forum"


class DbNode(SuperuserNode):
    """A database host: SQL as the superuser (testlib's `sql`, in the app's
    database) or as the app role."""

    def app_sql(self, server, query, password, conninfo=""):
        """Run SQL as the app role over TCP from this host to `server`."""
        conninfo = f"host={server} user={APP_USER} dbname={APP_DB} connect_timeout=5 {conninfo}"
        return self.host.run(
            f"PGPASSWORD={shlex.quote(password)} psql -XAt -v ON_ERROR_STOP=1 "
            f"{shlex.quote(conninfo)} -c {shlex.quote(query)}")

    def postmaster_pid(self):
        with self.host.sudo():
            return self.host.check_output(
                "head -n1 \"$(runuser -u postgres -- psql -XAtc 'show data_directory')/postmaster.pid\"")

    def version(self):
        return int(self.sql("show server_version_num")) // 10000


def controller_sql(server, query, password):
    """Run SQL as the app role over TCP from the controller (the network's
    gateway address, which no host lists as a client)."""
    env = dict(os.environ, PGPASSWORD=password, PGCONNECT_TIMEOUT="5")
    argv = ["psql", "-XAt", "-v", "ON_ERROR_STOP=1",
            f"host={server} user={APP_USER} dbname={APP_DB}", "-c", query]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env, check=False)


def converge(*args):
    """Re-run the scenario's converge playbook (the role alone)."""
    return run_playbook(scenario_converge_playbook(), *args)


def playbook(name, *args):
    """Run playbooks/<name> (a thin wrapper around one of the role's entry
    points) against the scenario's inventory."""
    return run_playbook(f"playbooks/{name}", *args)


@pytest.fixture(scope="session")
def app_password():
    return pathlib.Path(EPHEMERAL, "secrets", "db").read_text().strip()


@pytest.fixture(scope="session")
def dbs():
    """pg-db12 (PostgreSQL 15), pg-db13 (17)."""
    return nodes("db", DbNode, sort=True)


@pytest.fixture(scope="session")
def primary(dbs):
    """The Debian 12 db host, where the tests change things."""
    return dbs[0]


@pytest.fixture(scope="session")
def pairs(dbs):
    """(db host, its allowed client): each lists the other in
    postgresql_client_addresses (molecule.yml)."""
    result = list(zip(dbs, reversed(dbs)))
    assert all(db.vars["postgresql_client_addresses"] == [client.address] for db, client in result)
    return result
