"""Hosts of the backup scenario: backup-db1 (the forum's db host, archiving
its WAL), backup-db2 (a fresh db host to restore onto) and backup-repo1
(the pgBackRest repository host), reached the way Ansible reaches them
(see molecule/shared/testlib.py)."""
import pathlib
import shlex
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared"))
from testlib import DbNode, Node, nodes  # noqa: E402

STANZA = "forum"
REPO_USER = "pgbackrest"


class RepoNode(Node):
    """The repository host: pgBackRest as the repository's account."""

    def pgbackrest(self, *args):
        with self.host.sudo(REPO_USER):
            return self.host.run("pgbackrest " + " ".join(shlex.quote(a) for a in (f"--stanza={STANZA}",) + args))


@pytest.fixture(scope="session")
def db1():
    return next(n for n in nodes("db", DbNode) if n.name == "backup-db1")


@pytest.fixture(scope="session")
def db2():
    return next(n for n in nodes("db", DbNode) if n.name == "backup-db2")


@pytest.fixture(scope="session")
def repo():
    return nodes("backup", RepoNode)[0]
