"""The users role alone on a fresh Debian 12 host: the deploy user's key
login and sudo work, other keys are refused, the key list is exclusive,
and a key list that would lock the run out is refused or undone."""
import json
import pathlib
import subprocess

import pytest

from roletest import assert_refused, converge, fingerprint
from testlib import EPHEMERAL, assert_check_mode_reports_no_change

DEPLOY = "deploy"
# What the role writes, and the account databases it edits.
MANAGED = [
    f"/home/{DEPLOY}", f"/home/{DEPLOY}/.ssh", f"/home/{DEPLOY}/.ssh/*",
    "/etc/sudoers.d/*", "/etc/passwd", "/etc/group", "/etc/shadow",
]


@pytest.fixture(scope="session")
def other_key():
    """A key pair the host was never given."""
    path = pathlib.Path(EPHEMERAL, "id_other")
    if not path.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "other", "-f", str(path)], check=True)
    return path


def ssh_with(node, key, user, command="true"):
    """A new SSH login offering only `key`."""
    argv = [
        "ssh", "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
        "-o", "ConnectTimeout=10", "-o", "ControlMaster=no", "-o", "ControlPath=none",
        "-o", f"UserKnownHostsFile={EPHEMERAL}/known_hosts", "-o", "StrictHostKeyChecking=accept-new",
        f"{user}@{node.address}", command,
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def test_deploy_user_logs_in_with_its_key_and_sudo_needs_no_password(node):
    result = node.ssh(DEPLOY, "sudo -n id -u")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"


def test_another_key_is_refused(node, other_key):
    result = ssh_with(node, other_key, DEPLOY)
    assert result.returncode == 255
    assert "Permission denied" in result.stderr


def test_deploy_user_has_no_password_and_a_private_home(node):
    with node.host.sudo():
        status = node.host.check_output(f"passwd -S {DEPLOY}").split()
        listing = node.host.run(f"runuser -u nobody -- ls /home/{DEPLOY}")
    assert status[1] == "L", status  # locked: only the key gets in
    assert listing.rc != 0 and "Permission denied" in listing.stderr


def test_deploy_user_is_in_the_ssh_group(node):
    # The group the sshd role's AllowGroups admits (users_ssh_group).
    assert "ssh-users" in node.host.user(DEPLOY).groups


def test_a_key_added_by_hand_is_removed_by_the_next_run(node, other_key):
    public = pathlib.Path(f"{other_key}.pub").read_text().strip()
    with node.host.sudo():
        node.host.check_output(f"echo '{public}' >> /home/{DEPLOY}/.ssh/authorized_keys")
    assert ssh_with(node, other_key, DEPLOY).returncode == 0, "the hand-added key should work before the run"
    result = converge()
    assert result.returncode == 0, result.stdout[-3000:]
    refused = ssh_with(node, other_key, DEPLOY)
    assert refused.returncode == 255 and "Permission denied" in refused.stderr
    assert node.ssh(DEPLOY, "sudo -n true").returncode == 0


def test_check_mode_on_the_converged_host_reports_no_change():
    assert_check_mode_reports_no_change()


# --- key lists that would lock the run out -------------------------------------

OTHER_LINE = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBv7AqTvHWp1HgE5Qz3UuIuKcVc5mX0Yc2fV5G2m3b1h someone-else"

BROKEN = {
    # The preflight sees the key Ansible logs in with (its .pub file).
    "keys without the controller's": ({"users_deploy_keys": [OTHER_LINE]}, ["users_deploy_keys", "lock Ansible out"]),
    "no key at all": ({"users_deploy_keys": []}, ["users_deploy_keys must list at least one"]),
    "a DSA key": ({"users_deploy_keys": ["ssh-dss AAAAB3NzaC1kc3MAAACBAP dsa@old"]}, ["users_deploy_keys"]),
    "a name that smuggles another line": ({"users_deploy_name": "deploy\nroot"}, ["users_deploy_name"]),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_wrong_input_is_refused_before_any_change(node, case):
    extra, names = BROKEN[case]
    before = fingerprint(node, MANAGED)
    result = converge("-e", json.dumps(extra))
    assert_refused(result, names, node, before, MANAGED)
    assert node.ssh(DEPLOY, "sudo -n true").returncode == 0


def test_a_key_list_that_drops_the_key_in_use_is_undone(node):
    # The preflight cannot see the key when ssh gets it from its own options
    # (IdentityFile, an agent): the new login after the change catches it,
    # and the previous authorized_keys goes back.
    before = fingerprint(node, MANAGED)
    result = converge("-e", json.dumps({
        "users_deploy_keys": [OTHER_LINE],
        "ansible_ssh_private_key_file": "",
        "ansible_ssh_extra_args": f"-o IdentityFile={node.key} -o IdentitiesOnly=yes",
    }))
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output[-3000:]
    assert "users_deploy_keys" in output, output[-3000:]
    assert "previous keys and sudo rule are back" in output, output[-3000:]
    assert fingerprint(node, MANAGED) == before
    assert node.ssh(DEPLOY, "sudo -n true").returncode == 0
