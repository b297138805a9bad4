"""The host of the loadbalancer scenario (the role alone, in front of two
fixture HTTPS backends on the same host), reached the way Ansible reaches
it (see molecule/shared/testlib.py)."""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared"))
from testlib import Node, nodes  # noqa: E402


@pytest.fixture(scope="session")
def lb():
    return nodes("lb", Node)[0]
