"""Fast re-runs (roles/stamp): an unchanged site.yml re-run ends after one
comparison per host; drift on a host, or a changed setting, makes every role
run again and the run repairs or applies it.

The scenario's inventory sets stamp_fast_rerun=false, so Molecule's
idempotence step and test_faults run every role; these tests turn the fast
path on with -e. `disruptive`: they run playbooks, after every other test."""
import json
import re

import pytest
from testlib import recap, run_playbook

pytestmark = pytest.mark.disruptive

UNCHANGED = "Unchanged since the last converge"
FAST = json.dumps({"stamp_fast_rerun": True})
DRIFT_LINE = "# drift: not written by forum-stack"
DIFFERS = "Differs from the last converge in: "
BANTIME = json.dumps({"fail2ban_bantime": "2h"})


def site(*extra):
    result = run_playbook("site.yml", "-e", FAST, *extra, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:]
    return result, recap(result.stdout)


def verdicts(result):
    """What the comparison said for each host."""
    return re.findall(r'"msg": "((?:Unchanged|Differs|No stamp|Could not)[^"]*)"', result.stdout)


def assert_fast(result, counts, all_nodes):
    assert set(counts) == {node.name for node in all_nodes}, result.stdout[-2000:]
    assert result.stdout.count(UNCHANGED) == len(all_nodes), verdicts(result)
    # No role ran: only the login probe and the comparison.
    assert "PLAY [Harden all hosts]" in result.stdout
    assert "TASK [base :" not in result.stdout and "TASK [forum : Build" not in result.stdout
    for host, numbers in counts.items():
        assert numbers["changed"] == 0 and numbers["failed"] == 0, (host, numbers)
        assert numbers["ok"] < 25, (host, numbers)


def test_an_unchanged_rerun_ends_after_the_comparison(all_nodes):
    result, counts = site()
    assert_fast(result, counts, all_nodes)


def test_drift_and_a_changed_setting_make_every_role_run_and_are_repaired(web, db, all_nodes):
    """Both reasons to run every role, in one run (each costs a run of
    every role): drift on each host (nginx stopped on the web host, a line
    added to pg_hba.conf on the db host) and a changed setting (every host)."""
    with web.host.sudo():
        web.host.check_output("systemctl stop nginx")
    with db.host.sudo():
        hba = db.host.check_output("ls /etc/postgresql/*/main/pg_hba.conf")
        db.host.check_output(f"echo '{DRIFT_LINE}' >> {hba}")
    result, counts = site("-e", BANTIME)
    assert UNCHANGED not in result.stdout
    said = verdicts(result)
    assert len(said) == len(all_nodes), said
    assert all(verdict.startswith(DIFFERS + "variable fail2ban_bantime") for verdict in said), said
    # The host's own state is compared too, not only the settings.
    assert any(", units" in verdict for verdict in said), said
    assert any(", path /etc" in verdict for verdict in said), said
    for node in all_nodes:
        assert counts[node.name]["changed"] >= 1, counts
        with node.host.sudo():
            assert "bantime = 2h" in node.host.file("/etc/fail2ban/jail.local").content_string
    with web.host.sudo():
        assert web.host.service("nginx").is_running
    with db.host.sudo():
        assert DRIFT_LINE not in db.host.file(hba).content_string
    # Repaired, applied and stamped again: the next run has nothing to do.
    result, counts = site("-e", BANTIME)
    assert_fast(result, counts, all_nodes)
