"""The host of the redis scenario (the role alone), reached the way Ansible
reaches it (see molecule/shared/testlib.py), and Redis commands sent over
TCP from the controller or from the host itself."""
import pathlib
import shlex
import socket
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared"))
from testlib import EPHEMERAL, Node, nodes  # noqa: E402


def resp(*words):
    """One command in Redis' protocol (RESP)."""
    out = b"*%d\r\n" % len(words)
    for word in words:
        data = str(word).encode()
        out += b"$%d\r\n%s\r\n" % (len(data), data)
    return out


def redis_commands(address, port, *commands, timeout=5):
    """Send each command (a tuple of words) on one new connection from the
    controller; returns the first line of each reply ("+OK", "-NOAUTH ...",
    ":1", "$3" ...)."""
    replies = []
    with socket.create_connection((address, port), timeout=timeout) as conn:
        reader = conn.makefile("rb")
        for command in commands:
            conn.sendall(resp(*command))
            line = reader.readline().decode().rstrip("\r\n")
            if line.startswith("$") and line != "$-1":
                reader.read(int(line[1:]) + 2)
            replies.append(line)
    return replies


class RedisNode(Node):
    """The Redis host."""

    @property
    def port(self):
        return int(self.vars.get("redis_port", 6379))

    def cli(self, password, *words, address="127.0.0.1"):
        """redis-cli on the host itself; the password through the
        environment, never on the command line."""
        env = f"REDISCLI_AUTH={shlex.quote(password)} " if password else ""
        return self.host.run(
            f"{env}redis-cli --no-auth-warning -h {address} -p {self.port} "
            + " ".join(shlex.quote(w) for w in words))


@pytest.fixture(scope="session")
def password():
    return pathlib.Path(EPHEMERAL, "secrets", "redis").read_text().strip()


@pytest.fixture(scope="session")
def node():
    return nodes("redis", RedisNode)[0]
