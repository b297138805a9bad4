"""What the stack exposes to another machine on its network: a probe
container (not in the inventory, so neither a web nor a db host) connects to
every TCP port of both hosts."""
import json
import subprocess
import textwrap

import pytest

PROBE = "stack-probe"
PROBE_IMAGE = "local/debian-systemd:12"
PROBE_ADDRESS = "172.29.10.50"
NETWORK = "molecule-stack"

# Runs inside the probe: a TCP connect scan of ports 1-65535 of every
# address given; prints {address: [open ports]}. ufw drops what it does not
# allow, so every closed port costs a timeout (1.5 s: one SYN retransmit).
# Connections start at a steady RATE per second, not in bursts (a burst of
# thousands of SYNs overflows the bridge's queues and hides open ports);
# each unanswered SYN holds a conntrack entry on the Docker host for a while.
SCAN = textwrap.dedent("""
    import collections, errno, json, select, socket, sys, time

    RATE, TIMEOUT, MAX_PENDING = 3000, 1.5, 10000
    addresses = sys.argv[1:]
    targets = [(address, port) for port in range(1, 65536) for address in addresses]
    found = {address: [] for address in addresses}
    poller = select.epoll()
    pending = {}  # fd: (socket, address, port)
    deadlines = collections.deque()  # (deadline, socket) in the order started
    start, started = time.monotonic(), 0
    while started < len(targets) or pending:
        now = time.monotonic()
        due = min(len(targets), int((now - start) * RATE) + 1)
        while started < due and len(pending) < MAX_PENDING:
            address, port = targets[started]
            started += 1
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            error = sock.connect_ex((address, port))
            if error == errno.EINPROGRESS:
                pending[sock.fileno()] = (sock, address, port)
                poller.register(sock.fileno(), select.EPOLLOUT)
                deadlines.append((now + TIMEOUT, sock))
                continue
            if error == 0:
                found[address].append(port)
            sock.close()
        for fd, _ in poller.poll(0.005):
            sock, address, port = pending.pop(fd)
            poller.unregister(fd)
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                found[address].append(port)
            sock.close()
        now = time.monotonic()
        while deadlines and (deadlines[0][0] <= now or deadlines[0][1].fileno() == -1):
            _, sock = deadlines.popleft()
            if sock.fileno() != -1:
                poller.unregister(sock.fileno())
                del pending[sock.fileno()]
                sock.close()
    print(json.dumps({address: sorted(ports) for address, ports in found.items()}))
""")

# Runs inside the probe or a host: connect to address:port; exit 0 when
# the connection is accepted, 3 when refused, dropped or timed out.
CONNECT = textwrap.dedent("""
    import socket, sys
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5).close()
    except OSError as error:
        print(type(error).__name__, error)
        sys.exit(3)
""")


def docker(*args, timeout=120, check=True):
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=check)


class Probe:
    def python(self, script, *args, timeout=300):
        return subprocess.run(["docker", "exec", "-i", PROBE, "python3", "-", *args],
                              input=script, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def probe():
    docker("rm", "-f", PROBE, check=False)
    docker("run", "-d", "--name", PROBE, "--network", NETWORK, "--ip", PROBE_ADDRESS,
           "--entrypoint", "sleep", PROBE_IMAGE, "infinity")
    try:
        yield Probe()
    finally:
        docker("rm", "-f", PROBE, check=False)


@pytest.fixture(scope="module")
def scan(probe, web, db):
    result = probe.python(SCAN, web.address, db.address, timeout=600)
    assert result.returncode == 0, result.stderr
    return {address: set(ports) for address, ports in json.loads(result.stdout).items()}


def test_web_host_exposes_only_ssh_http_and_https(scan, web):
    assert scan[web.address] == {22, 80, 443}


def test_db_host_exposes_only_ssh(scan, db):
    assert scan[db.address] == {22}


def test_postgresql_answers_the_web_host_but_not_the_probe(probe, web, db):
    from_probe = probe.python(CONNECT, db.address, "5432", timeout=60)
    assert from_probe.returncode == 3, from_probe.stdout + from_probe.stderr
    from_web = web.host.run(f"python3 - {db.address} 5432 <<'EOF'\n{CONNECT}\nEOF")
    assert from_web.rc == 0, from_web.stdout + from_web.stderr
    # PostgreSQL itself is listening for the probe to be shut out: ufw, not
    # a missing listener, keeps it out.
    with db.host.sudo():
        assert db.host.socket(f"tcp://{db.address}:5432").is_listening or \
            db.host.socket("tcp://0.0.0.0:5432").is_listening
