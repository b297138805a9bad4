"""Hosts of the postgresql scenario, reached the way Ansible reaches them
(over SSH as the deploy user), and a way to run the repository's playbooks
against them."""
import os
import pathlib
import shlex
import subprocess

import pytest
import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
REPO = pathlib.Path(__file__).resolve().parents[3]
RUNNER = AnsibleRunner(INVENTORY)
APP_DB = "forum"
APP_USER = "forum"


class Node:
    """A test host: its testinfra handle plus the variables Ansible uses."""

    def __init__(self, name):
        self.name = name
        self.vars = RUNNER.get_variables(name)
        self.host = testinfra.get_host(f"ansible://{name}", ansible_inventory=INVENTORY)
        self.address = self.vars["ansible_host"]

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
    env = dict(os.environ,
               ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               ANSIBLE_ROLES_PATH=str(REPO / "roles"),
               ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_NOCOLOR="1")
    argv = ["ansible-playbook", "-i", INVENTORY, str(REPO / "playbooks" / name), *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600, check=False)


def _nodes(group):
    names = RUNNER.get_hosts(group)
    if not names:
        pytest.skip(f"no host in group {group}")
    return [Node(name) for name in sorted(names)]


@pytest.fixture(scope="session")
def app_password():
    return pathlib.Path(EPHEMERAL, "secrets", "db").read_text().strip()


@pytest.fixture(scope="session")
def web():
    return _nodes("web")[0]


@pytest.fixture(scope="session")
def dbs():
    return _nodes("db")


@pytest.fixture(scope="session")
def primary(dbs):
    """The Debian 12 db host, where the tests change things."""
    return dbs[0]
