"""What every scenario's testinfra suite shares: the scenario's hosts,
reached the way Ansible reaches them (over SSH as the deploy user), and a
way to run the repository's playbooks against the scenario's inventory.

Each scenario's tests/conftest.py puts this directory on sys.path and
imports from here; the variables come from the environment Molecule gives
the verifier (MOLECULE_INVENTORY_FILE, MOLECULE_EPHEMERAL_DIRECTORY).
"""
import http.client
import json
import os
import pathlib
import re
import shlex
import socket
import shutil
import ssl
import subprocess

import pytest
import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
EPHEMERAL = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", os.path.dirname(INVENTORY))
RUNNER = AnsibleRunner(INVENTORY)
REPO = pathlib.Path(__file__).resolve().parents[2]


class Node:
    """A test host: its testinfra handle plus the variables Ansible uses."""

    # Seconds `ssh()` waits for a new connection.
    ssh_connect_timeout = 5

    def __init__(self, name):
        self.name = name
        self.vars = RUNNER.get_variables(name)
        self.host = testinfra.get_host(f"ansible://{name}", ansible_inventory=INVENTORY)
        self.address = self.vars["ansible_host"]
        self.key = self.vars.get("ansible_ssh_private_key_file")

    def ssh(self, user, command="true", *options):
        """Run `command` over a NEW SSH connection as `user` from the
        controller; returns the CompletedProcess (never raises)."""
        argv = [
            "ssh", "-i", self.key,
            "-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.ssh_connect_timeout}",
            "-o", "ControlMaster=no", "-o", "ControlPath=none",
            *self.vars.get("ansible_ssh_common_args", "").split(),
            *options, f"{user}@{self.address}", command,
        ]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60)

    def can_connect(self, address, port):
        """Whether a TCP connection from this host to address:port opens."""
        script = (
            "import socket, sys\n"
            "try:\n"
            f"    socket.create_connection(('{address}', {port}), timeout=4).close()\n"
            "except OSError:\n"
            "    sys.exit(3)\n"
        )
        result = self.host.run(f"python3 -c \"{script}\"")
        assert result.rc in (0, 3), result.stderr
        return result.rc == 0


class DbNode(Node):
    """A database host: SQL as the postgres superuser (psql, -XAt, stopping
    at the first error), in the forum's database unless told another."""

    def run_sql(self, query, database="forum"):
        """The CompletedProcess-like result; never raises."""
        return self.as_postgres(f"psql -XAt -v ON_ERROR_STOP=1 -d {database} -c {shlex.quote(query)}")

    def sql(self, query, database="forum"):
        """The output, without the trailing newline; fails the test on an error."""
        result = self.run_sql(query, database)
        assert result.rc == 0, f"{self.name}: {query}: {result.stderr}"
        return result.stdout.rstrip("\r\n")

    def as_postgres(self, command):
        """A shell command run as the postgres account; never raises."""
        with self.host.sudo("postgres"):
            return self.host.run(command)


def nodes(group, node_class=Node, sort=False):
    """The hosts of an inventory group as `node_class` objects; skips the
    test when the group is empty."""
    names = RUNNER.get_hosts(group)
    if not names:
        pytest.skip(f"no host in group {group}")
    return [node_class(name) for name in (sorted(names) if sort else names)]


def run_playbook(playbook, *args, timeout=600, inventory=None):
    """ansible-playbook `playbook` (a path relative to the repository root)
    against the scenario's inventory (or `inventory`), without colour; never
    raises on a failed run: returns the CompletedProcess."""
    env = dict(os.environ,
               ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               ANSIBLE_ROLES_PATH=str(REPO / "roles"),
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    argv = ["ansible-playbook", "-i", inventory or INVENTORY, str(REPO / playbook), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO, check=False)


def recap(output):
    """PLAY RECAP counters per host: {host: {"ok": n, "changed": n, ...}}."""
    result = {}
    for line in output.splitlines():
        match = re.match(r"^\s*(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", line)
        if match:
            result[match.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(2))}
    return result


def tls_context():
    """A client TLS context that accepts the test hosts' self-signed
    certificates."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def negotiated_alpn(address, port=443, offered=("h2", "http/1.1")):
    """The application protocol the server picks by ALPN from `offered`."""
    context = tls_context()
    context.set_alpn_protocols(list(offered))
    with socket.create_connection((address, port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=address) as tls:
            return tls.selected_alpn_protocol()


def request(address, path="/", scheme="https", host=None, headers=None, timeout=10):
    """One GET, redirects not followed: (status, lower-cased headers, body
    bytes)."""
    if scheme == "https":
        conn = http.client.HTTPSConnection(address, timeout=timeout, context=tls_context())
    else:
        conn = http.client.HTTPConnection(address, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host or address, **(headers or {})})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def curl_get(address, path="/", http="2", port=443, headers=()):
    """One GET with the controller's curl over HTTPS (`--http2` falls back
    to HTTP/1.1 when the server offers no h2; `--http1.1` never offers it):
    (status line, [(lower-cased name, value), ...] in the order and number
    received)."""
    argv = ["curl", "-sk", f"--http{http}", "--max-time", "10", "-o", "/dev/null", "-D", "-"]
    for header in headers:
        argv += ["-H", header]
    out = subprocess.run([*argv, f"https://{address}:{port}{path}"], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    lines = [line for line in out.replace("\r", "").split("\n") if line]
    fields = [line.split(":", 1) for line in lines[1:]]
    return lines[0].strip(), [(name.strip().lower(), value.strip()) for name, value in fields]


# testssl.sh checks run against a listener: protocols, cipher categories,
# forward secrecy, server preference, certificate, HTTP headers, the
# vulnerabilities (BREACH among them); not the client simulation or the
# per-cipher lists, which take minutes more and grade nothing new here.
TESTSSL_CHECKS = ("-p", "-s", "-f", "-P", "-S", "-h", "-U")
# Findings that are the lab's own trust chain: a self-signed certificate
# has no trusted issuer and no CRL or OCSP address.
TESTSSL_LAB_TRUST = frozenset({"cert_chain_of_trust", "cert_revocation"})
TESTSSL_SERIOUS = frozenset({"MEDIUM", "HIGH", "CRITICAL"})


def run_testssl(address, port=443, path="/"):
    """testssl.sh (TESTSSL_CHECKS) against https://address:port/path: its
    findings, a list of {"id", "severity", "finding", ...} from --jsonfile."""
    binary = shutil.which("testssl") or shutil.which("testssl.sh")
    assert binary, "testssl.sh is not installed on the controller (Debian package testssl.sh)"
    jsonfile = pathlib.Path(EPHEMERAL) / f"testssl-{address}-{port}.json"
    jsonfile.unlink(missing_ok=True)
    argv = [binary, "--quiet", "--color", "0", "--warnings", "off", "--sneaky", *TESTSSL_CHECKS,
            "--jsonfile", str(jsonfile), f"https://{address}:{port}{path}"]
    # The exit status counts findings of any kind: the JSON is the verdict.
    run = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    assert jsonfile.exists(), run.stdout[-3000:] + run.stderr[-2000:]
    findings = json.loads(jsonfile.read_text())
    assert any(f["id"] == "scanTime" for f in findings), run.stdout[-3000:]
    return findings


def serious_tls_findings(findings, accepted=()):
    """Findings of severity MEDIUM or above, but for the lab's trust chain
    and the ids in `accepted`."""
    skip = TESTSSL_LAB_TRUST | set(accepted)
    return [(f["id"], f["severity"], f["finding"]) for f in findings
            if f["severity"] in TESTSSL_SERIOUS and f["id"] not in skip]


def scenario_converge_playbook():
    """The converge playbook of the running scenario (its converge.yml
    unless molecule.yml names another), as an absolute path."""
    scenario = pathlib.Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
    return str(scenario / "converge.yml")


def assert_check_mode_reports_no_change(playbook=None, *args):
    """`--check --diff` of the scenario's converge playbook (or `playbook`,
    relative to the repository root) against the converged hosts: no host
    may report a change or a failure."""
    target = playbook or scenario_converge_playbook()
    result = run_playbook(target, "--check", "--diff", *args)
    assert result.returncode == 0, result.stdout[-4000:]
    counts = recap(result.stdout)
    assert counts, result.stdout[-2000:]
    for host, numbers in counts.items():
        assert numbers["changed"] == 0 and numbers["failed"] == 0, (host, numbers, result.stdout[-4000:])
    return result
