"""The fail2ban scenario's one host, reached as Ansible reaches it (root over
SSH here: see molecule.yml)."""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared"))
from testlib import nodes  # noqa: E402


@pytest.fixture(scope="session")
def node():
    return nodes("all")[0]
