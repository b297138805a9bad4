"""bulwark.hardening installed from its tarball hardens a fresh host: only
the deploy user's key gets in, ufw denies by default, fail2ban watches SSH,
and a re-run in check mode changes nothing."""
import json
import os
import pathlib
import socket
import subprocess
import tarfile
import time

from testlib import EPHEMERAL, assert_check_mode_reports_no_change

COLLECTIONS = pathlib.Path(EPHEMERAL) / "collections"


def test_the_roles_come_from_the_installed_tarball():
    # The scenario's ANSIBLE_COLLECTIONS_PATH reaches the verifier too.
    listing = subprocess.run(
        ["ansible-galaxy", "collection", "list", "bulwark.hardening", "--format", "json"],
        capture_output=True, text=True, check=True, env=dict(os.environ)).stdout
    found = {path: names for path, names in json.loads(listing).items() if names}
    assert found == {str(COLLECTIONS / "ansible_collections"): {"bulwark.hardening": {"version": "1.0.0"}}}, found


def test_the_tarball_knows_nothing_of_the_forum():
    (tarball,) = (pathlib.Path(EPHEMERAL) / "build").glob("bulwark-hardening-*.tar.gz")
    with tarfile.open(tarball) as archive:
        members = [m for m in archive.getmembers() if m.isfile()]
        assert not [m.name for m in members if "cache" in m.name or m.name.endswith(".pyc")]
        mentions = [m.name for m in members if b"forum" in archive.extractfile(m).read().lower() or "forum" in m.name]
    assert mentions == []


def test_the_deploy_user_logs_in_with_its_key_and_can_sudo(node):
    login = node.ssh("deploy", "sudo -n id -u")
    assert login.returncode == 0, login.stderr
    assert login.stdout.strip() == "0"


def test_root_login_is_refused(node):
    # root's authorized_keys still holds the key (the provider's handover).
    login = node.ssh("root")
    assert login.returncode == 255
    assert "Permission denied" in login.stderr, login.stderr


def test_password_login_is_refused(node):
    login = node.ssh("deploy", "true", "-o", "PubkeyAuthentication=no",
                     "-o", "PreferredAuthentications=password,keyboard-interactive")
    assert login.returncode == 255
    # sshd offers public keys only.
    assert "Permission denied (publickey)" in login.stderr, login.stderr


def test_ufw_is_active_and_denies_by_default(node):
    with node.host.sudo():
        status = node.host.check_output("ufw status verbose")
        node.host.run("systemctl stop coll-listen; systemctl reset-failed coll-listen")
        node.host.check_output("systemd-run --unit coll-listen --property RuntimeMaxSec=60 "
                               "python3 -m http.server 8080 --bind 0.0.0.0 --directory /srv")
    assert "Status: active" in status and "deny (incoming)" in status, status
    try:
        for _ in range(20):
            if node.host.run("python3 -c \"import socket; socket.create_connection(('127.0.0.1', 8080), 1)\"").rc == 0:
                break
            time.sleep(0.5)
        else:
            raise AssertionError("the listener on 8080 did not start")
        try:
            socket.create_connection((node.address, 8080), timeout=3).close()
            reachable = True
        except OSError:
            reachable = False
        assert not reachable, "8080 answers from outside although nothing allows it"
    finally:
        with node.host.sudo():
            node.host.run("systemctl stop coll-listen")


def test_fail2ban_watches_ssh(node):
    with node.host.sudo():
        assert node.host.service("fail2ban").is_running
        jail = node.host.run("fail2ban-client status sshd")
    assert jail.rc == 0 and "Currently banned" in jail.stdout, jail.stdout + jail.stderr


def test_check_mode_on_the_converged_host_reports_no_change():
    assert_check_mode_reports_no_change()
