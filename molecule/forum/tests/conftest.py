"""The host of the forum scenario (the role alone, with a fixture database
and relay), reached the way Ansible reaches it (see
molecule/shared/testlib.py)."""
import json
import pathlib
import shlex
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared"))
from testlib import Node, nodes  # noqa: E402

# GET a path over the app's unix socket, as the given user: prints the
# status line's code, then the body.
SOCKET_GET = """
import http.client, socket, sys
class Conn(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(10)
        self.sock.connect(sys.argv[1])
conn = Conn("localhost")
conn.request("GET", sys.argv[2])
response = conn.getresponse()
print(response.status)
sys.stdout.write(response.read().decode())
"""


class WebNode(Node):
    """A host running the forum."""

    def socket_get(self, path, user="www-data"):
        """GET `path` on the app's socket as `user`: (status, body), or
        (None, error) when the connection fails."""
        socket_path = self.vars.get("forum_socket", "/run/forum/app.sock")
        with self.host.sudo():
            result = self.host.run(
                f"runuser -u {user} -- python3 -c {shlex.quote(SOCKET_GET)} {socket_path} {shlex.quote(path)}")
        if result.rc != 0:
            return None, result.stderr
        status, _, body = result.stdout.partition("\n")
        return int(status), body

    def health(self):
        status, body = self.socket_get("/healthz")
        assert status == 200, body
        return json.loads(body)

    def sql(self, query):
        with self.host.sudo("postgres"):
            return self.host.check_output(f"psql -XAt -d forum -c {shlex.quote(query)}")

    def main_pid(self):
        return self.host.check_output("systemctl show -p MainPID --value forum.service")


@pytest.fixture(scope="session")
def web():
    return nodes("web", WebNode)[0]
