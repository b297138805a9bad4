"""No run may end with the operator having less access than before: changes
that can cut SSH access are applied, proven with a new login, and undone
when that login fails; wrong values are refused before anything changes;
sshd's port moves without losing the host. Each case checks the run failed
naming the setting, the deploy login still works, and every file the
hardening roles manage is byte for byte as it was."""
import json
import pathlib
import socket
import subprocess
import tempfile

import pytest

from conftest import recap, run_harden, wait_penalty
from testlib import EPHEMERAL

# Files the hardening roles manage, and the directories whose listing must
# not change either (a copy left behind counts as a change).
MANAGED = [
    "/etc/ssh/sshd_config",
    "/etc/ssh/sshd_config.d/00-hardening.conf",
    "/home/deploy/.ssh/authorized_keys",
    "/etc/sudoers.d/deploy",
    "/etc/ufw/user.rules",
    "/etc/ufw/user6.rules",
    "/etc/ufw/ufw.conf",
    "/etc/default/ufw",
    "/etc/fail2ban/jail.local",
    "/etc/sysctl.d/99-zz-bulwark.conf",
    "/etc/apt/apt.conf.d/52bulwark-unattended",
    "/etc/issue.net",
    "/etc/login.defs",
]
LISTED = ["/etc/ssh/sshd_config.d", "/home/deploy/.ssh", "/etc/sudoers.d", "/etc/fail2ban", "/etc/ufw"]


def fingerprint(node):
    """sha256 of every managed file plus the listings of their directories."""
    files = " ".join(MANAGED)
    dirs = " ".join(LISTED)
    with node.host.sudo():
        out = node.host.run(f"sha256sum {files} 2>&1; ls -la --time-style=+ {dirs}")
    return out.stdout


def fingerprints(nodes):
    return {node.name: fingerprint(node) for node in nodes}


def assert_refused(result, names, nodes, before):
    """The run failed, named every setting, and left every host as it was
    with the deploy login working."""
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output[-3000:]
    for name in names:
        assert name in output, (name, output[-4000:])
    wait_penalty()
    for node in nodes:
        login = node.ssh("deploy", "sudo -n true")
        assert login.returncode == 0, (node.name, login.stderr)
    assert fingerprints(nodes) == before


@pytest.fixture()
def before(all_nodes):
    return fingerprints(all_nodes)


# --- refused before anything changes ---------------------------------------------


def test_a_key_list_without_the_controllers_key_is_refused_first(all_nodes, before):
    other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBv7AqTvHWp1HgE5Qz3UuIuKcVc5mX0Yc2fV5G2m3b1h someone-else"
    result = run_harden("-e", json.dumps({"users_deploy_keys": [other]}))
    assert_refused(result, ["users_deploy_keys"], all_nodes, before)
    for host, counts in recap(result.stdout).items():
        assert counts["changed"] == 0, (host, counts)


HOSTILE = {
    "sshd_allow_groups": ["ssh-users\nPermitRootLogin yes"],
    "sshd_allow_users": ["deploy root"],
    "sshd_deploy_user": "deploy;id",
    "sshd_ciphers": ["aes256-ctr\nPasswordAuthentication yes"],
    "sshd_macs": ["hmac-sha2-512,none"],
    "sshd_kex_algorithms": ["curve25519-sha256 x"],
    "sshd_host_key_algorithms": ["ssh-ed25519\n"],
    "sshd_banner": "/etc/issue.net\nPermitRootLogin yes",
    "fail2ban_ignoreip": ["0.0.0.0/0 ::/0"],
    "fail2ban_findtime": "10m\n[sshd]",
    "firewall_rules": [{"port": 9100, "from": "any to any port 22", "comment": "x' y"}],
    "firewall_comment_prefix": "bulwark firewall:'",
    "firewall_legacy_comment_prefixes": ["old"],
    "firewall_ssh_unlimited_sources": ["0.0.0.0/0\n"],
    "users_deploy_name": "deploy\nroot",
    "users_ssh_group": "ssh-users,root",
    "base_sysctl_extra": {"vm.swappiness": "10\nkernel.sysrq = 1", "kernel.x\nvm.y": 1},
    "base_blacklisted_modules": ["dccp\ninstall usb-storage /bin/false"],
    "base_ntp_servers": ["pool.ntp.org\nFallbackNTP=evil.example"],
    "base_timezone": "Etc/UTC;id",
    "base_debian_mirror": "http://deb.debian.org/debian-security bookworm main\ndeb http://evil.example",
    "base_unattended_reboot_time": "03:30\nUnattended-Upgrade::Mail \"x\";",
    "base_state_dir": "/var/lib/bulwark state",
    "base_obsolete_paths": ["/etc/../etc"],
    "base_extra_packages": ["vim; rm -rf /"],
    "base_banner": "Authorised access only\u001b[2J",
}
NAMED = [
    "sshd_allow_groups", "sshd_allow_users", "sshd_deploy_user", "sshd_ciphers", "sshd_macs",
    "sshd_kex_algorithms", "sshd_host_key_algorithms", "sshd_banner", "fail2ban_ignoreip",
    "fail2ban_findtime", "firewall_rules[].from", "firewall_rules[].comment", "firewall_comment_prefix",
    "firewall_legacy_comment_prefixes",
    "firewall_ssh_unlimited_sources", "users_deploy_name", "users_ssh_group",
    "base_sysctl / base_sysctl_extra (keys)", "base_sysctl / base_sysctl_extra (values)",
    "base_blacklisted_modules", "base_ntp_servers", "base_timezone", "base_debian_mirror",
    "base_unattended_reboot_time", "base_state_dir", "base_obsolete_paths", "base_packages / base_extra_packages",
    "base_banner",
]


def test_a_hostile_value_for_every_setting_is_refused_before_any_change(all_nodes, before):
    # One run: the check play names every wrong setting of every role.
    result = run_harden("-e", json.dumps(HOSTILE))
    assert_refused(result, NAMED, all_nodes, before)
    for host, counts in recap(result.stdout).items():
        assert counts["changed"] == 0, (host, counts)


# --- applied, proven, undone ----------------------------------------------------

SSHD_RESTORED = ("previous sshd configuration is back and the login this run came in with"
                 " (deploy on port 22) works again")


def test_allow_groups_without_the_deploy_user_are_undone(all_nodes, before):
    # Valid sshd syntax that admits nobody Ansible logs in as: sshd takes it,
    # the login after it fails, the previous drop-in goes back.
    result = run_harden("-e", json.dumps({"sshd_allow_groups": ["wheel"]}))
    assert_refused(result, ["sshd_allow_groups", SSHD_RESTORED], all_nodes, before)


def test_allow_users_from_another_address_are_undone(all_nodes, before):
    result = run_harden("-e", json.dumps({"sshd_allow_users": ["deploy@192.0.2.7"]}))
    assert_refused(result, ["sshd_allow_users", SSHD_RESTORED], all_nodes, before)


def test_a_key_list_that_drops_the_key_in_use_is_undone(all_nodes, before):
    # The preflight cannot see the key when it comes from ssh's own options
    # (an agent, IdentityFile): the login after the change catches it.
    key = all_nodes[0].key
    other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBv7AqTvHWp1HgE5Qz3UuIuKcVc5mX0Yc2fV5G2m3b1h someone-else"
    result = run_harden("-e", json.dumps({
        "users_deploy_keys": [other],
        "ansible_ssh_private_key_file": "",
        "ansible_ssh_extra_args": f"-o IdentityFile={key} -o IdentitiesOnly=yes",
    }))
    restored = "previous keys and sudo rule are back and a new login as deploy works again"
    assert_refused(result, ["users_deploy_keys", restored], all_nodes, before)


# --- the SSH port moves, and back -------------------------------------------------


def _inventory(**variables):
    """An extra inventory file setting `variables` for every host, as an
    operator edits group_vars (inventory, unlike -e, lets the run move off
    a port that does not answer)."""
    handle = tempfile.NamedTemporaryFile("w", suffix=".yml", dir=EPHEMERAL, delete=False)
    json.dump({"all": {"vars": variables}}, handle)
    handle.close()
    return handle.name


def _open(address, port):
    try:
        socket.create_connection((address, port), timeout=4).close()
        return True
    except OSError:
        return False


def _login(node, port):
    return node.ssh("deploy", "sudo -n true", "-p", str(port))


def test_moving_sshd_port_to_2222_and_back(all_nodes):
    before = fingerprints(all_nodes)
    moved = _inventory(sshd_port=2222, ansible_port=2222)
    back = _inventory(sshd_port=22, ansible_port=22, connect_fallback_ports=[2222])
    try:
        result = run_harden("-i", moved)
        assert result.returncode == 0, result.stdout[-4000:]
        for node in all_nodes:
            assert _login(node, 2222).returncode == 0, node.name
            assert not _open(node.address, 22), f"{node.name}: sshd still answers on 22"
            listening = node.ssh("deploy", "sudo -n ss -Htln", "-p", "2222").stdout
            assert ":2222 " in listening and ":22 " not in listening, listening
    finally:
        result = run_harden("-i", back)
    assert result.returncode == 0, result.stdout[-4000:]
    for node in all_nodes:
        assert _login(node, 22).returncode == 0, node.name
        assert not _open(node.address, 2222), f"{node.name}: sshd still answers on 2222"
    # A plain run afterwards closes 2222 in ufw (this run came in on 22),
    # and every file is as before the move.
    result = run_harden()
    assert result.returncode == 0, result.stdout[-4000:]
    assert fingerprints(all_nodes) == before
    for node in all_nodes:
        with node.host.sudo():
            assert "2222" not in node.host.check_output("ufw show added")


# --- runs in a row never lock the controller out ------------------------------------


def test_the_controller_is_not_rate_limited(all_nodes):
    # ufw's `limit` refuses the 7th new connection within 30 s from one
    # source; the controller's own address is exempt, so runs in a row work.
    for node in all_nodes:
        results = [node.ssh("deploy", "true").returncode for _ in range(10)]
        assert results == [0] * 10, (node.name, results)


def test_other_sources_are_still_rate_limited(web, db):
    # From the db host, new connections to web's SSH port in a burst: ufw
    # drops them after the sixth.
    script = (
        "import socket\n"
        "ok = 0\n"
        "for _ in range(10):\n"
        "    try:\n"
        f"        socket.create_connection(('{web.address}', 22), timeout=2).close(); ok += 1\n"
        "    except OSError:\n"
        "        pass\n"
        "print(ok)\n"
    )
    opened = int(db.host.check_output(f"python3 -c \"{script}\""))
    assert 1 <= opened <= 6, opened
