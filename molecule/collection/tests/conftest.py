"""The collection scenario's host, reached over SSH as the deploy user (see
molecule/shared/testlib.py). The inventory's ansible_user is a template
(root before the first converge, the deploy user after), which testinfra
does not render: the host handle names the deploy user itself."""
import pathlib
import sys

import pytest
import testinfra

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared"))
from testlib import RUNNER, Node, nodes  # noqa: E402


class DeployNode(Node):
    """A host reached as the deploy user."""

    def __init__(self, name):
        self.name = name
        self.vars = RUNNER.get_variables(name)
        self.address = self.vars["ansible_host"]
        self.key = self.vars["ansible_ssh_private_key_file"]
        self.host = testinfra.get_host(
            f"ssh://deploy@{self.address}", ssh_identity_file=self.key,
            ssh_extra_args=self.vars["ansible_ssh_common_args"])


@pytest.fixture(scope="session")
def node():
    return nodes("all", DeployNode)[0]
