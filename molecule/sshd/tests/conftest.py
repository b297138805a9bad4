"""The sshd scenario's one host, reached as Ansible reaches it (the deploy
user over SSH: see molecule.yml), with sshd's effective settings."""
import pathlib
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared"))
from testlib import Node, nodes  # noqa: E402

# sshd (OpenSSH 9.8+, PerSourcePenalties) refuses new connections from a
# source once its penalties add up to 15 s: 5 s for a failed login, 1 s for
# a connection that never authenticated. Waiting them out after each keeps
# the controller's next login from being refused.
AUTHFAIL_SECONDS = 7
NOAUTH_SECONDS = 2


class SshdNode(Node):
    """A host whose sshd the role configured."""

    ssh_connect_timeout = 10

    def sshd_config(self):
        """sshd's effective configuration (`sshd -T`) as a dict."""
        with self.host.sudo():
            text = self.host.check_output("/usr/sbin/sshd -T")
        return dict(line.split(" ", 1) for line in text.splitlines() if " " in line)


def wait_penalty(seconds=AUTHFAIL_SECONDS):
    time.sleep(seconds)


@pytest.fixture(scope="session")
def node():
    return nodes("all", SshdNode)[0]
