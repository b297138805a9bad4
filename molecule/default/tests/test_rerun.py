"""Plain Ansible re-runs of the converged stack: `--check --diff` reports no
change, `--tags` runs one role alone, and a plain `site.yml` re-run (every
role runs, every time) repairs drift on the hosts.

`disruptive`: they run playbooks, after every other test."""
import re

import pytest
from testlib import recap, run_playbook

pytestmark = pytest.mark.disruptive

DRIFT_LINE = "# drift: not written by this stack"


def site(*extra):
    result = run_playbook("site.yml", *extra, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:]
    return result, recap(result.stdout)


def roles_that_ran(output):
    """The role names of every task header in a run's output, but for the
    argument checks Ansible runs for every role whatever the tags. A
    collection's role prints as its FQCN (bulwark.hardening.sshd): the name
    counted is its last part."""
    return set(re.findall(r"^TASK \[(?:[a-z0-9_]+\.[a-z0-9_]+\.)?([a-z0-9_]+) : (?!Validating arguments against arg spec)",
                          output, re.MULTILINE))


def test_check_mode_on_the_converged_stack_reports_no_change(all_nodes):
    result, counts = site("--check", "--diff")
    assert set(counts) == {node.name for node in all_nodes}, result.stdout[-2000:]
    for host, numbers in counts.items():
        assert numbers["changed"] == 0 and numbers["failed"] == 0, (host, numbers, result.stdout[-3000:])
    # Every role ran (in check mode): nothing is skipped by cleverness.
    assert {"base", "users", "firewall", "sshd", "fail2ban", "postgresql", "nginx", "forum"} <= roles_that_ran(result.stdout)


def test_tags_run_one_role_alone(web, all_nodes):
    result, counts = site("--tags", "nginx")
    assert roles_that_ran(result.stdout) == {"nginx"}, sorted(roles_that_ran(result.stdout))
    assert counts[web.name]["changed"] == 0, counts
    result, counts = site("--skip-tags", "fail2ban,forum,deploy,postgresql")
    ran = roles_that_ran(result.stdout)
    assert "fail2ban" not in ran and "forum" not in ran and "postgresql" not in ran, sorted(ran)
    assert {"base", "users", "sshd", "firewall", "nginx"} <= ran, sorted(ran)


def test_a_plain_rerun_repairs_drift(web, db, all_nodes):
    """Drift on each host (nginx stopped on the web host, a line added to
    pg_hba.conf on the db host): a plain site.yml re-run puts it right."""
    with web.host.sudo():
        web.host.check_output("systemctl stop nginx")
    with db.host.sudo():
        hba = db.host.check_output("ls /etc/postgresql/*/main/pg_hba.conf")
        db.host.check_output(f"echo '{DRIFT_LINE}' >> {hba}")
    result, counts = site()
    assert counts[web.name]["changed"] >= 1 and counts[db.name]["changed"] >= 1, counts
    with web.host.sudo():
        assert web.host.service("nginx").is_running
    with db.host.sudo():
        assert DRIFT_LINE not in db.host.file(hba).content_string
