"""What the one-role scenarios (molecule/base, users, sshd, firewall,
fail2ban) share on top of testlib: run the scenario's converge playbook
again, fingerprint the files a role manages, check that a refused run
changed nothing, and throwaway TCP listeners inside a host."""
import socket
import time

from testlib import recap, run_playbook, scenario_converge_playbook


def converge(*args, timeout=600):
    """ansible-playbook of the scenario's converge.yml (the role alone) with
    extra arguments; returns the CompletedProcess."""
    return run_playbook(scenario_converge_playbook(), *args, timeout=timeout)


def fingerprint(node, paths):
    """sha256 of every file matching `paths` (shell globs: a renamed or new
    file changes the listing too) plus owner and mode of each."""
    listing = " ".join(paths)
    with node.host.sudo():
        return node.host.run(
            f"for f in {listing}; do [ -e \"$f\" ] || continue; "
            f"stat -c '%n %U %G %a' \"$f\"; [ -f \"$f\" ] && sha256sum \"$f\"; done 2>&1").stdout


def assert_refused(result, names, node, before, paths):
    """The run failed naming every one of `names`, reported no change, and
    every file in `paths` is byte for byte as in `before`."""
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output[-3000:]
    for name in names:
        assert name in output, (name, output[-4000:])
    counts = recap(result.stdout)
    assert counts, output[-3000:]
    for host, numbers in counts.items():
        assert numbers["changed"] == 0, (host, numbers, output[-3000:])
    assert fingerprint(node, paths) == before


def reachable(address, port, timeout=3):
    """Whether a TCP connection from the controller to address:port opens."""
    try:
        socket.create_connection((address, port), timeout=timeout).close()
        return True
    except OSError:
        return False


class Listener:
    """A throwaway TCP listener on `port` inside the host (a transient
    systemd unit that stops by itself after two minutes)."""

    def __init__(self, node, port):
        self.node = node
        self.port = port
        self.unit = f"molecule-listen-{port}"

    def __enter__(self):
        with self.node.host.sudo():
            self.node.host.run(f"systemctl stop {self.unit}; systemctl reset-failed {self.unit}")
            self.node.host.check_output(
                f"systemd-run --unit {self.unit} --property RuntimeMaxSec=120 "
                f"python3 -m http.server {self.port} --bind 0.0.0.0 --directory /srv")
        for _ in range(20):
            if self.node.can_connect("127.0.0.1", self.port):
                return self
            time.sleep(0.5)
        raise AssertionError(f"listener on {self.port} did not start")

    def __exit__(self, *exc):
        with self.node.host.sudo():
            self.node.host.run(f"systemctl stop {self.unit}")
