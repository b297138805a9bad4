"""The sshd role alone on a fresh Debian 13 host (OpenSSH 10): what sshd
really does for new connections from the controller (root, passwords and
weak crypto refused, the deploy key admitted), its effective settings,
the port move, and changes that would lock the run out refused or undone."""
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import paramiko
import pytest

from conftest import NOAUTH_SECONDS, wait_penalty
from roletest import assert_refused, converge, fingerprint, reachable
from testlib import EPHEMERAL, assert_check_mode_reports_no_change

MANAGED = ["/etc/ssh/sshd_config", "/etc/ssh/sshd_config.d/*", "/etc/ssh/moduli", "/etc/ssh/ssh_host_*"]

# --- logins, each over a NEW connection from the controller ------------------


def test_deploy_user_logs_in_with_its_key(node):
    result = node.ssh("deploy", "sudo -n id -u")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"


def test_root_login_is_refused(node):
    # Root still has the provider's key in authorized_keys: only sshd says no.
    result = node.ssh("root")
    wait_penalty()
    assert result.returncode == 255
    assert "Permission denied" in result.stderr


def test_password_login_is_refused(node):
    # A real password attempt (Paramiko speaks the protocol directly): sshd
    # does not even offer the method.
    transport = paramiko.Transport((node.address, 22))
    try:
        transport.start_client(timeout=10)
        with pytest.raises(paramiko.BadAuthenticationType) as refused:
            transport.auth_password("deploy", "not-the-password")
        assert refused.value.allowed_types == ["publickey"]
    finally:
        transport.close()
        wait_penalty()


# Algorithms a stock OpenSSH 10 server accepts and the role takes away, each
# with the error the controller's ssh reports. (Stock OpenSSH 10 offers no
# weak cipher and no finite-field Diffie-Hellman any more: nothing to test.)
WEAK = {
    "NIST curve key exchange": (["-o", "KexAlgorithms=ecdh-sha2-nistp256"], "no matching key exchange method"),
    "SHA-1 MAC": (["-o", "Ciphers=aes128-ctr", "-o", "MACs=hmac-sha1"], "no matching MAC"),
    "encrypt-and-MAC": (["-o", "Ciphers=aes128-ctr", "-o", "MACs=hmac-sha2-256"], "no matching MAC"),
    "ECDSA host key": (["-o", "HostKeyAlgorithms=ecdsa-sha2-nistp256"], "no matching host key type"),
}


@pytest.mark.parametrize("case", list(WEAK))
def test_weak_crypto_is_refused(node, case):
    options, message = WEAK[case]
    result = node.ssh("deploy", "true", *options)
    wait_penalty(NOAUTH_SECONDS)
    assert result.returncode == 255
    assert message in result.stderr, result.stderr


def test_strong_crypto_the_same_way_gets_in(node):
    # The control for the test above: pinning algorithms the role keeps works.
    result = node.ssh(
        "deploy", "true",
        "-o", "KexAlgorithms=sntrup761x25519-sha512@openssh.com",
        "-o", "Ciphers=aes128-ctr", "-o", "MACs=hmac-sha2-256-etm@openssh.com",
        "-o", "HostKeyAlgorithms=ssh-ed25519")
    assert result.returncode == 0, result.stderr


# --- what sshd runs with ----------------------------------------------------------


def test_effective_sshd_config_is_key_only(node):
    config = node.sshd_config()
    assert config["permitrootlogin"] == "no"
    assert config["passwordauthentication"] == "no"
    assert config["kbdinteractiveauthentication"] == "no"
    assert config["authenticationmethods"] == "publickey"
    assert config["allowgroups"] == "ssh-users"
    assert int(config["maxauthtries"]) <= 3
    for forwarding in ("allowtcpforwarding", "allowagentforwarding", "x11forwarding", "permittunnel"):
        assert config[forwarding] == "no", forwarding


def test_effective_crypto_is_post_quantum_first_with_nothing_weak(node):
    config = node.sshd_config()
    kex = config["kexalgorithms"].split(",")
    assert kex[0] == "mlkem768x25519-sha256", kex  # OpenSSH 9.9+
    offered = kex + config["ciphers"].split(",") + config["macs"].split(",") + config["hostkeyalgorithms"].split(",")
    weak = [name for name in offered if any(bad in name for bad in (
        "nistp", "sha1", "cbc", "ssh-rsa", "diffie-hellman-group", "umac-64", "arcfour", "3des"))]
    assert weak == []
    assert all(mac.endswith("-etm@openssh.com") for mac in config["macs"].split(","))
    assert int(config["requiredrsasize"]) >= 3072


def test_only_strong_host_keys_are_served(node):
    # ssh-keyscan over loopback (inside the host), one type per connection.
    served = {}
    for key_type in ("ed25519", "rsa", "ecdsa"):
        output = node.host.run(f"ssh-keyscan -T 5 -t {key_type} 127.0.0.1 2>/dev/null").stdout
        served[key_type] = [line for line in output.splitlines() if line.strip() and not line.startswith("#")]
        time.sleep(2)
    assert served["ed25519"] and served["rsa"], served
    assert served["ecdsa"] == []
    bits = node.host.check_output("ssh-keygen -l -f /etc/ssh/ssh_host_rsa_key.pub").split()[0]
    assert int(bits) >= 3072


def ssh_audit_failures(report):
    """ssh-audit's failures in its JSON report: each algorithm (key
    exchange, host key, cipher, MAC) with a "fail" note, and each CVE."""
    failures = [(kind, item["algorithm"], note) for kind in ("kex", "key", "enc", "mac")
                for item in report.get(kind, []) for note in item.get("notes", {}).get("fail", [])]
    return failures + [("cve", cve.get("name"), cve.get("description")) for cve in report.get("cves", [])]


def test_ssh_audit_finds_no_failure(node):
    # ssh-audit (pinned in requirements-dev.txt) from the controller,
    # against the port sshd answers on.
    binary = pathlib.Path(sys.executable).with_name("ssh-audit")
    binary = str(binary) if binary.exists() else shutil.which("ssh-audit")
    assert binary, "ssh-audit is not installed (requirements-dev.txt)"
    run = subprocess.run([binary, "-j", "-t", "10", "-p", str(node.vars.get("ansible_port", 22)), node.address],
                         capture_output=True, text=True, timeout=120, check=False)
    # A handful of connections that never log in: let sshd's penalty lapse.
    wait_penalty()
    # Exit status 0: all good, 2: warnings only (curve25519-sha256 for
    # clients without a post-quantum key exchange); 3 is a failure, 1 no
    # connection.
    assert run.returncode in (0, 2), (run.returncode, run.stdout[-2000:], run.stderr[-2000:])
    report = json.loads(run.stdout)
    assert report.get("kex") and report.get("key"), run.stdout[-2000:]
    assert ssh_audit_failures(report) == [], run.stdout[-4000:]


def test_small_dh_moduli_are_gone(node):
    smallest = node.host.check_output(
        "awk '$1 !~ /^#/ && NF >= 7 { print $5 }' /etc/ssh/moduli | sort -n | head -1")
    assert smallest == "" or int(smallest) >= 3071


def test_check_mode_on_the_converged_host_reports_no_change():
    assert_check_mode_reports_no_change()


# --- wrong input: refused before anything changes --------------------------------

BROKEN = {
    "port out of range": ({"sshd_port": 70000}, ["sshd_port must be 1-65535"]),
    "a cipher that smuggles a directive": (
        {"sshd_ciphers": ["aes256-ctr\nPasswordAuthentication yes"]}, ["sshd_ciphers"]),
    "users that leave out the deploy user": ({"sshd_allow_users": ["root"]}, ["sshd_allow_users", "lock you out"]),
    "a group list that is not a list": ({"sshd_allow_groups": {"ssh-users": 1}}, ["sshd_allow_groups"]),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_wrong_input_is_refused_before_any_change(node, case):
    extra, names = BROKEN[case]
    before = fingerprint(node, MANAGED)
    result = converge("-e", json.dumps(extra))
    assert_refused(result, names, node, before, MANAGED)


# --- applied, proven, undone -------------------------------------------------------

RESTORED = "previous sshd configuration is back and the login this run came in with (deploy on port 22) works again"

LOCKOUTS = {
    # Valid sshd syntax that admits nobody Ansible logs in as: sshd takes it,
    # the new login after it fails, the previous drop-in goes back.
    # (The hardening scenario also tries AllowUsers from another address.)
    "groups without the deploy user": {"sshd_allow_groups": ["wheel"]},
}


@pytest.mark.parametrize("case", list(LOCKOUTS))
def test_a_change_that_cuts_the_login_is_undone(node, case):
    extra = LOCKOUTS[case]
    before = fingerprint(node, MANAGED)
    result = converge("-e", json.dumps(extra))
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output[-3000:]
    assert next(iter(extra)) in output, output[-3000:]
    assert RESTORED in output, output[-3000:]
    wait_penalty()
    assert fingerprint(node, MANAGED) == before
    assert node.ssh("deploy", "sudo -n true").returncode == 0


# --- the port moves, and back --------------------------------------------------------


def _inventory(**variables):
    """An extra inventory file setting `variables` for every host, as an
    operator edits group_vars."""
    handle = tempfile.NamedTemporaryFile("w", suffix=".yml", dir=EPHEMERAL, delete=False)
    json.dump({"all": {"vars": variables}}, handle)
    handle.close()
    return handle.name


def test_moving_the_port_to_2222_and_back(node):
    before = fingerprint(node, MANAGED)
    try:
        # Connected on 22: sshd listens on both, proves 2222, drops 22.
        result = converge("-i", _inventory(sshd_port=2222))
        assert result.returncode == 0, result.stdout[-4000:]
        assert node.ssh("deploy", "sudo -n true", "-p", "2222").returncode == 0
        assert not reachable(node.address, 22), "sshd still answers on 22"
    finally:
        # The inventory says where sshd is now (2222) and where it goes (22).
        result = converge("-i", _inventory(sshd_port=22, ansible_port=2222))
    assert result.returncode == 0, result.stdout[-4000:]
    assert node.ssh("deploy", "sudo -n true").returncode == 0
    assert not reachable(node.address, 2222), "sshd still answers on 2222"
    assert fingerprint(node, MANAGED) == before
