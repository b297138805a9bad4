"""The host of the nginx scenario (the role alone, with a stand-in app on
its upstream socket), reached the way Ansible reaches it (see
molecule/shared/testlib.py)."""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared"))
from testlib import Node, nodes  # noqa: E402


@pytest.fixture(scope="session")
def web():
    return nodes("web", Node)[0]
