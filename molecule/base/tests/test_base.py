"""The base role alone on a fresh Debian 12 host: what a login, apt, the
kernel's boot settings and account tools see afterwards, and refused
input that changes nothing."""
import json
import re

import pytest

from roletest import assert_refused, converge, fingerprint
from testlib import assert_check_mode_reports_no_change

# Files and directories the role writes (globs: a renamed file counts too).
MANAGED = [
    "/etc/login.defs", "/etc/timezone", "/etc/localtime", "/etc/issue", "/etc/issue.net",
    "/etc/sysctl.d/*", "/etc/apt/apt.conf.d/*", "/etc/apt/sources.list.d/*",
    "/etc/modprobe.d/*", "/etc/security/limits.d/*", "/etc/needrestart/conf.d/*",
    "/etc/default/sysstat", "/etc/default/debsums", "/etc/crontab", "/etc/cron.d",
]


# --- security updates ---------------------------------------------------------


def test_unattended_upgrades_run_daily(node):
    with node.host.sudo():
        periodic = node.host.check_output("apt-config dump APT::Periodic")
    assert 'APT::Periodic::Update-Package-Lists "1";' in periodic
    assert 'APT::Periodic::Unattended-Upgrade "1";' in periodic
    assert node.host.service("apt-daily-upgrade.timer").is_enabled


def _allowed_origins(node):
    with node.host.sudo():
        dry_run = node.host.run("unattended-upgrade --dry-run --debug 2>&1")
    assert dry_run.rc == 0, dry_run.stdout[-2000:]
    line = re.search(r"^Allowed origins are: (.*)$", dry_run.stdout, re.M)
    assert line, dry_run.stdout[-2000:]
    return [origin.strip() for origin in line.group(1).split(", ")]


def test_unattended_upgrades_know_the_security_suite(node):
    # The suite the role adds when apt's sources lack it: without it the
    # daily run would find nothing to install.
    origins = _allowed_origins(node)
    assert "origin=Debian,codename=bookworm-security,label=Debian-Security" in origins, origins
    with node.host.sudo():
        policy = node.host.check_output("apt-cache policy")
    assert "bookworm-security" in policy


def test_unattended_upgrades_take_security_updates_only(node):
    # Debian's 50unattended-upgrades allows the point releases
    # (codename=bookworm,label=Debian) too: the role's file clears that list.
    origins = _allowed_origins(node)
    assert origins and all("-security" in origin for origin in origins), origins


# --- kernel settings, time, accounts -------------------------------------------


def _effective_boot_sysctl(node):
    """What systemd-sysctl applies at boot: every sysctl.d file in its own
    order, the last assignment of a key winning."""
    text = node.host.check_output("/lib/systemd/systemd-sysctl --cat-config")
    values = {}
    for line in text.splitlines():
        match = re.match(r"^\s*-?([a-z0-9_./*-]+)\s*=\s*(.*?)\s*$", line)
        if match:
            values[match.group(1)] = match.group(2)
    return values


# The role's values that no other file overrides at boot.
BOOT_SYSCTL = {
    "kernel.kptr_restrict": "2", "kernel.dmesg_restrict": "1", "kernel.yama.ptrace_scope": "1",
    "kernel.sysrq": "0", "fs.suid_dumpable": "0", "fs.protected_regular": "2",
    "net.ipv4.conf.all.rp_filter": "1", "net.ipv4.conf.all.accept_redirects": "0",
    "net.ipv4.conf.all.send_redirects": "0", "net.ipv4.tcp_syncookies": "1",
    "net.ipv6.conf.all.accept_redirects": "0",
}


def test_kernel_settings_apply_at_boot(node):
    # Docker mounts /proc/sys read-only: the role reports every key as
    # skipped here, and whether it sets them live can only be seen on a VM.
    # What the kernel gets at boot (systemd-sysctl's own reading, so a later
    # file overriding ours would show) is checked here.
    boot = _effective_boot_sysctl(node)
    assert {key: boot.get(key) for key in BOOT_SYSCTL} == BOOT_SYSCTL


def test_protected_fifos_survives_systemds_own_file(node):
    # systemd's /usr/lib/sysctl.d/99-protect-links.conf sets it to 1; the
    # role's file sorts after it.
    assert _effective_boot_sysctl(node).get("fs.protected_fifos") == "2"


def test_the_roles_former_sysctl_file_goes(node):
    # Hosts converged before the rename have 90-bulwark.conf: left there, it
    # would set its old values at boot too.
    former = "/etc/sysctl.d/90-bulwark.conf"
    with node.host.sudo():
        node.host.check_output(f"printf 'kernel.sysrq = 1\\n' > {former}")
    result = converge()
    assert result.returncode == 0, result.stdout[-3000:]
    with node.host.sudo():
        assert not node.host.file(former).exists
    assert _effective_boot_sysctl(node).get("kernel.sysrq") == "0"


def test_time_zone_is_utc_and_timesyncd_enabled(node):
    assert node.ssh("root", "date +%Z").stdout.strip() == "UTC"
    # systemd skips timesyncd in a container (the host keeps time); enabled,
    # it runs on a VM.
    assert node.host.service("systemd-timesyncd").is_enabled


def test_new_accounts_get_the_password_policy(node):
    with node.host.sudo():
        node.host.run("userdel -r molecule-policy 2>/dev/null")
        node.host.check_output("useradd -m molecule-policy")
        try:
            ageing = node.host.check_output("LC_ALL=C chage -l molecule-policy")
        finally:
            node.host.run("userdel -r molecule-policy")
    assert re.search(r"Maximum number of days between password change\s*:\s*365$", ageing, re.M), ageing
    assert re.search(r"Minimum number of days between password change\s*:\s*1$", ageing, re.M), ageing
    assert re.search(r"warning before password expires\s*:\s*14$", ageing, re.M), ageing


@pytest.fixture()
def login_user(node):
    """A throwaway account that logs in with root's key (sshd is stock
    here), for what PAM does to a non-root login."""
    name = "molecule-login"
    with node.host.sudo():
        node.host.check_output(
            f"userdel -r {name} 2>/dev/null; useradd -m -s /bin/bash {name} && "
            f"install -d -m 0700 -o {name} -g {name} /home/{name}/.ssh && "
            f"install -m 0600 -o {name} -g {name} /root/.ssh/authorized_keys /home/{name}/.ssh/")
        uid = node.host.check_output(f"id -u {name}")
    yield name, uid
    with node.host.sudo():
        node.host.run(f"pkill -u {name}; userdel -r {name}")


def test_a_login_gets_no_core_dumps_and_a_private_tmpdir(node, login_user):
    # pam_limits (core 0) and libpam-tmpdir act on a real login session.
    name, uid = login_user
    result = node.ssh(name, "ulimit -Hc; ulimit -Sc; echo $TMPDIR")
    assert result.returncode == 0, result.stderr
    hard, soft, tmpdir = result.stdout.split()
    assert (hard, soft) == ("0", "0")
    assert tmpdir == f"/tmp/user/{uid}"


def test_cron_files_are_root_only(node):
    with node.host.sudo():
        for path in ("/etc/cron.d", "/etc/cron.daily"):
            listing = node.host.run(f"runuser -u nobody -- ls {path}")
            assert listing.rc != 0 and "Permission denied" in listing.stderr, path


def test_check_mode_on_the_converged_host_reports_no_change():
    assert_check_mode_reports_no_change()


# --- wrong input: refused before anything changes --------------------------------

BROKEN = {
    "time zone with a command": ({"base_timezone": "Etc/UTC;id"}, ["base_timezone"]),
    "sysctl value with a second line": (
        {"base_sysctl_extra": {"vm.swappiness": "10\nkernel.sysrq = 1"}}, ["base_sysctl_extra"]),
    # argument_specs checks the types first, naming the variable.
    "days that are not a number": ({"base_pass_max_days": "often"}, ["base_pass_max_days"]),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_wrong_input_is_refused_before_any_change(node, case):
    extra, names = BROKEN[case]
    before = fingerprint(node, MANAGED)
    result = converge("-e", json.dumps(extra))
    assert_refused(result, names, node, before, MANAGED)
