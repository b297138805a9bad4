"""Behaviour of a host after playbooks/harden.yml, seen from outside (new SSH
connections from the controller) and inside (sshd -T, ufw, fail2ban)."""
import json
import re
import socket
import time

import paramiko
import pytest

from conftest import recap, run_harden, wait_penalty

# --- sshd: what it really does -----------------------------------------------


def test_effective_sshd_config_is_key_only(node):
    config = node.sshd_config()
    assert config["permitrootlogin"] == "no"
    assert config["passwordauthentication"] == "no"
    assert config["kbdinteractiveauthentication"] == "no"
    assert config["pubkeyauthentication"] == "yes"
    assert config["authenticationmethods"] == "publickey"
    assert config["permitemptypasswords"] == "no"
    assert config["allowgroups"] == "ssh-users"
    assert int(config["maxauthtries"]) <= 3
    assert int(config["logingracetime"]) <= 60
    for forwarding in ("allowtcpforwarding", "allowagentforwarding", "x11forwarding", "permittunnel"):
        assert config[forwarding] == "no", forwarding


def test_effective_crypto_has_no_weak_algorithms(node):
    config = node.sshd_config()
    kex = config["kexalgorithms"].split(",")
    assert any(name.startswith(("sntrup761", "mlkem768")) for name in kex), kex
    offered = kex + config["ciphers"].split(",") + config["macs"].split(",") + config["hostkeyalgorithms"].split(",")
    weak = [name for name in offered if any(bad in name for bad in ("nistp", "sha1", "cbc", "ssh-rsa", "diffie-hellman-group1", "diffie-hellman-group14", "umac-64", "arcfour", "3des"))]
    assert weak == []
    assert all(mac.endswith("-etm@openssh.com") for mac in config["macs"].split(","))


def test_only_strong_host_keys_are_served(node):
    # ssh-keyscan over loopback (inside the host): which keys sshd hands
    # out, one type per connection, spaced out for sshd's per-source penalty.
    served = {}
    for key_type in ("ed25519", "rsa", "ecdsa"):
        output = node.host.run(f"ssh-keyscan -T 5 -t {key_type} 127.0.0.1 2>/dev/null").stdout
        served[key_type] = [line for line in output.splitlines() if line.strip() and not line.startswith("#")]
        time.sleep(2)
    assert served["ed25519"] and served["rsa"], served
    assert served["ecdsa"] == []
    bits = node.host.check_output("ssh-keygen -l -f /etc/ssh/ssh_host_rsa_key.pub").split()[0]
    assert int(bits) >= 3072


def test_small_dh_moduli_are_gone(node):
    smallest = node.host.check_output(
        "awk '$1 !~ /^#/ && NF >= 7 { print $5 }' /etc/ssh/moduli | sort -n | head -1")
    assert smallest == "" or int(smallest) >= 3071


# --- logins, each over a NEW connection from the controller -----------------


def test_deploy_user_logs_in_with_its_key_and_can_sudo(node):
    result = node.ssh("deploy", "sudo -n id -u")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"


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


def test_root_login_is_refused(node):
    # Root still has the provider's key in authorized_keys: only sshd says no.
    result = node.ssh("root")
    wait_penalty()
    assert result.returncode == 255
    assert "Permission denied" in result.stderr


def test_fail2ban_counts_refused_logins_from_another_host(web, db):
    # The controller is in fail2ban_ignoreip here; the db host is not.
    for target, source in ((web, db), (db, web)):
        before = target.fail2ban_failed_total()
        attempt = source.host.run(
            f"ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
            f"-o ConnectTimeout=10 root@{target.address} true; echo exit=$?")
        # testinfra treats its own exit 255 as an error, hence the echo.
        assert "exit=255" in attempt.stdout and "Permission denied" in attempt.stderr, attempt.stderr
        deadline = time.monotonic() + 20
        while target.fail2ban_failed_total() <= before and time.monotonic() < deadline:
            time.sleep(1)
        assert target.fail2ban_failed_total() > before, f"{target.name}: the sshd jail did not see it"


def test_fail2ban_sshd_jail_bans_through_the_firewall(node):
    address = "192.0.2.77"  # TEST-NET-1: never a real peer
    with node.host.sudo():
        assert node.host.run("fail2ban-client status sshd").rc == 0
        node.host.check_output(f"fail2ban-client set sshd banip {address}")
        try:
            assert address in node.host.check_output("fail2ban-client get sshd banned")
            rules = node.host.run("iptables-save 2>/dev/null; nft list ruleset 2>/dev/null").stdout
            assert address in rules, "the ban did not reach the packet filter"
        finally:
            node.host.run(f"fail2ban-client set sshd unbanip {address}")


# --- firewall ------------------------------------------------------------------


def _listen(node, port):
    """Start a throwaway TCP listener on `port` inside the host."""
    with node.host.sudo():
        node.host.run(f"systemctl stop hard-listen-{port} 2>/dev/null; systemctl reset-failed hard-listen-{port} 2>/dev/null")
        node.host.check_output(
            f"systemd-run --unit hard-listen-{port} --property RuntimeMaxSec=120 "
            f"python3 -m http.server {port} --bind 0.0.0.0 --directory /srv")
    for _ in range(20):
        if node.host.run(f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 1)\"").rc == 0:
            return
        time.sleep(0.5)
    raise AssertionError(f"listener on {port} did not start")


def _stop(node, port):
    with node.host.sudo():
        node.host.run(f"systemctl stop hard-listen-{port}")


def _reachable(address, port):
    try:
        socket.create_connection((address, port), timeout=3).close()
        return True
    except OSError:
        return False


def test_port_not_in_inventory_is_closed(node):
    _listen(node, 8080)
    try:
        assert not _reachable(node.address, 8080)
    finally:
        _stop(node, 8080)


def test_ufw_denies_by_default_and_limits_ssh(node):
    with node.host.sudo():
        status = node.host.check_output("ufw status verbose")
    assert "Status: active" in status
    assert "deny (incoming)" in status
    assert re.search(r"^22/tcp\s+LIMIT IN\s+Anywhere", status, re.M), status


def test_group_rule_admits_only_that_group(web, db):
    # firewall_rules on the scenario: 9100 on every host, from the internal group.
    _listen(web, 9100)
    try:
        from_db = db.host.run(
            f"python3 -c \"import socket; socket.create_connection(('{web.address}', 9100), 3)\"")
        assert from_db.rc == 0, from_db.stderr
        assert not _reachable(web.address, 9100)  # the controller is not in internal
    finally:
        _stop(web, 9100)


# --- updates, time ---------------------------------------------------------------


def test_unattended_upgrades_take_security_updates(node):
    with node.host.sudo():
        periodic = node.host.check_output("apt-config dump APT::Periodic::Unattended-Upgrade")
        assert '"1"' in periodic
        dry_run = node.host.run("unattended-upgrade --dry-run --debug 2>&1 | head -40")
    assert dry_run.rc == 0
    assert "-security" in dry_run.stdout


def test_timesyncd_is_enabled(node):
    assert node.host.service("systemd-timesyncd").is_enabled


# --- a broken inventory stops the run before anything changes -----------------

BROKEN = {
    "port out of range": ({"sshd_port": 70000}, "sshd_port must be 1-65535"),
    # Types are checked first (argument_specs), naming the variable.
    "port with a directive": ({"sshd_port": "22\nPort 2200"}, "argument 'sshd_port' is of type str"),
    "no deploy key": ({"users_deploy_keys": []}, "users_deploy_keys must list at least one"),
    "malformed key": ({"users_deploy_keys": ["ssh-dss AAAAB3NzaC1kc3MAAACBAP dsa@old"]}, "users_deploy_keys must list"),
    "unknown group": ({"firewall_rules": [{"port": 9100, "from_group": "nosuchgroup"}]}, "from_group must be an"),
}


@pytest.mark.parametrize("case", list(BROKEN), ids=list(BROKEN))
def test_broken_inventory_fails_before_any_change(case, all_nodes):
    extra, message = BROKEN[case]
    result = run_harden("-e", json.dumps(extra))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert message in " ".join(output.split()), output[-3000:]
    for host, counts in recap(output).items():
        assert counts["changed"] == 0, (host, counts)
    for node in all_nodes:
        login = node.ssh("deploy", "sudo -n true")
        assert login.returncode == 0, login.stderr


# --- hosts hardened before the roles were a collection ---------------------------


def test_a_host_hardened_under_the_old_names_is_taken_over(all_nodes):
    # Back then base's files were named forum-stack and the firewall's rules
    # carried "forum-stack firewall:". playbooks/group_vars/all/hardening.yml
    # hands those names to the roles: one run removes the old file and
    # replaces the old rule (8081, which the inventory does not ask for).
    old_file = "/etc/sysctl.d/90-forum-stack.conf"
    for node in all_nodes:
        with node.host.sudo():
            node.host.check_output(f"cp /etc/sysctl.d/99-zz-bulwark.conf {old_file}")
            node.host.check_output("ufw allow 8081/tcp comment 'forum-stack firewall: 8081/tcp from any'")
    result = run_harden()
    assert result.returncode == 0, result.stdout[-3000:]
    for node in all_nodes:
        with node.host.sudo():
            assert not node.host.file(old_file).exists, node.name
            added = node.host.check_output("ufw show added")
        assert "forum-stack" not in added and "8081" not in added, (node.name, added)
        assert "'bulwark firewall: ssh 22/tcp'" in added, (node.name, added)
        assert not _reachable(node.address, 8081)


def test_check_mode_on_the_converged_hosts_reports_no_change():
    result = run_harden("--check", "--diff")
    assert result.returncode == 0, result.stdout[-3000:]
    counts = recap(result.stdout)
    assert counts, result.stdout[-2000:]
    for host, numbers in counts.items():
        assert numbers["changed"] == 0 and numbers["failed"] == 0, (host, numbers)
