"""A wrong value never reaches a live file: the run names it and leaves
every file the role manages as it was, and the server still starts. A
re-run repairs what a failure left on disk, even with the server down."""
import json

from conftest import converge
from testlib import recap

# Everything the role writes (settings, pg_hba, cluster creation settings,
# scripts), plus any leftover copy of a previous file.
MANAGED = ("find /etc/postgresql /etc/postgresql-common /usr/local/sbin -type f -print0 | sort -z"
           " | xargs -0 sha256sum; sha256sum /etc/systemd/system/postgresql-backup.*")

# A hostile value for every variable that lands in a file, by variable;
# the message names each as `<name>: <value as JSON>`.
HOSTILE = {
    "postgresql_version": "15\n",
    "postgresql_port": "5432\n",
    "postgresql_max_connections": "100\n",
    "postgresql_shared_buffers": "128MB'; DROP",
    "postgresql_effective_cache_size": "1GB\nport = 1",
    "postgresql_maintenance_work_mem": "64MB}",
    "postgresql_work_mem": "4MB;",
    "postgresql_max_parallel_workers": "2\n",
    "postgresql_max_parallel_workers_per_gather": "1e1",
    "postgresql_ssl_cert_file": "/etc/ssl/x'; DROP",
    "postgresql_ssl_key_file": "/etc/ssl/k\n",
    "postgresql_data_directory": "/srv/pg'\n",
    "postgresql_app_database": 'forum"; DROP',
    "postgresql_app_user": "all",
    "postgresql_backup_dir": "/var/backups/a b",
    "postgresql_backup_retention": "7\n",
    "postgresql_backup_on_calendar": "daily\nExecStartPre=/bin/sh",
    "postgresql_backup_randomized_delay": "15min%n",
    "postgresql_listen_addresses": ["localhost", "0.0.0.0'; DROP"],
    "postgresql_settings": {"log_line_prefix\n": "x", "include": "/etc/shadow", "work_mem": "4MB\nport = 1"},
    # A client's address, written into pg_hba.conf as <address>/32.
    "postgresql_client_addresses": ["172.29.30.13", "172.29.30.13/0"],
}
NAMED = [(name, value) for name, value in HOSTILE.items()
         if name not in ("postgresql_listen_addresses", "postgresql_settings", "postgresql_client_addresses")] + [
    ("postgresql_listen_addresses[1]", "0.0.0.0'; DROP"),
    ("postgresql_settings key", "log_line_prefix\n"),
    ("postgresql_settings key", "include"),
    ("postgresql_settings.work_mem", "4MB\nport = 1"),
    ("postgresql_client_addresses[1]", "172.29.30.13/0"),
]


def managed_files(db):
    with db.host.sudo():
        return db.host.check_output(MANAGED)


def failure_messages(output):
    """The `msg` of each host's failed task: {host: msg}."""
    messages = {}
    for line in output.splitlines():
        if line.startswith("fatal: [") and "=> " in line:
            host = line[len("fatal: ["):line.index("]")]
            messages[host] = json.loads(line.split("=> ", 1)[1])["msg"]
    return messages


def version(db):
    return db.version()


def test_a_setting_postgresql_rejects_is_named_and_nothing_changes(pairs, app_password):
    dbs = [db for db, _ in pairs]
    before = {db.name: managed_files(db) for db in dbs}
    assert all("conf.d/50-forum.conf" in files and "pg_hba.conf" in files and "postgresql-backup.timer" in files
               for files in before.values())
    run = converge("-e", json.dumps({"postgresql_settings": {"shared_buffers": "lots"}}))
    assert run.returncode != 0
    messages = failure_messages(run.stdout)
    for db in dbs:
        assert messages.get(db.name, "").startswith(
            f'postgresql_settings.shared_buffers: "lots" is rejected by PostgreSQL {version(db)}: '
            'invalid value for parameter "shared_buffers"'), (db.name, messages)
    assert {host: counts["changed"] for host, counts in recap(run.stdout).items()} == {db.name: 0 for db in dbs}
    assert {db.name: managed_files(db) for db in dbs} == before
    # What is on disk is what the server starts with: a restart works, and
    # the app logs in afterwards.
    for db, client in pairs:
        pid = db.postmaster_pid()
        with db.host.sudo():
            db.host.check_output(f"systemctl restart postgresql@{version(db)}-main")
        assert db.postmaster_pid() != pid
        login = client.app_sql(db.address, "select 1", app_password)
        assert login.rc == 0 and login.stdout.strip() == "1", (db.name, login.stderr)


def test_hostile_values_are_all_named_before_any_change(dbs):
    before = {db.name: managed_files(db) for db in dbs}
    run = converge("-e", json.dumps(HOSTILE))
    assert run.returncode != 0
    messages = failure_messages(run.stdout)
    expected = [f"{name}: {json.dumps(value)} is not allowed" for name, value in NAMED]
    for db in dbs:
        missing = [sentence for sentence in expected if sentence not in messages.get(db.name, "")]
        assert missing == [], (db.name, messages.get(db.name))
    counts = recap(run.stdout)
    assert set(counts) == {db.name for db in dbs}
    assert all(host["changed"] == 0 and host["failed"] == 1 for host in counts.values()), counts
    assert {db.name: managed_files(db) for db in dbs} == before


def test_a_rerun_repairs_a_broken_settings_file_while_the_server_is_down(primary, dbs, app_password):
    v = version(primary)
    settings = f"/etc/postgresql/{v}/main/conf.d/50-forum.conf"
    with primary.host.sudo():
        good = primary.host.check_output(f"sha256sum {settings}")
        # The outage: a wrong value on disk, and a server that will not start.
        primary.host.check_output(f"echo \"shared_buffers = 'lots'\" >> {settings}")
        primary.host.check_output(f"systemctl stop postgresql@{v}-main")
        assert primary.host.run(f"systemctl start postgresql@{v}-main").rc != 0
    run = converge("--limit", primary.name)
    assert run.returncode == 0, run.stdout[-3000:]
    with primary.host.sudo():
        assert primary.host.check_output(f"sha256sum {settings}") == good
        assert primary.host.service(f"postgresql@{v}-main").is_running
    login = dbs[1].app_sql(primary.address, "select 1", app_password)
    assert login.rc == 0 and login.stdout.strip() == "1", login.stderr


def test_a_client_network_instead_of_an_address_is_refused_before_any_change(primary):
    hba = f"/etc/postgresql/{version(primary)}/main/pg_hba.conf"
    with primary.host.sudo():
        before = primary.host.check_output(f"sha256sum {hba}")
    run = converge("--limit", primary.name, "-e", json.dumps({"postgresql_client_addresses": ["172.29.30.0/24"]}))
    assert run.returncode != 0
    message = failure_messages(run.stdout).get(primary.name, "")
    assert message.startswith('postgresql_client_addresses[0]: "172.29.30.0/24" is not allowed; it must be '), message
    assert recap(run.stdout)[primary.name]["changed"] == 0
    with primary.host.sudo():
        assert primary.host.check_output(f"sha256sum {hba}") == before


def test_timer_values_systemd_rejects_are_named_before_any_change(dbs):
    """Values the grammar lets through but systemd-analyze refuses (asked on
    the host, in the preflight's one probe)."""
    before = {db.name: managed_files(db) for db in dbs}
    run = converge("-e", json.dumps({"postgresql_backup_on_calendar": "not a time",
                                     "postgresql_backup_randomized_delay": "5 blorps"}))
    assert run.returncode != 0
    messages = failure_messages(run.stdout)
    for db in dbs:
        message = messages.get(db.name, "")
        assert 'postgresql_backup_on_calendar: "not a time" is rejected by systemd: ' in message, message
        assert 'postgresql_backup_randomized_delay: "5 blorps" is rejected by systemd: ' in message, message
    assert {host: counts["changed"] for host, counts in recap(run.stdout).items()} == {db.name: 0 for db in dbs}
    assert {db.name: managed_files(db) for db in dbs} == before


def test_a_data_directory_other_than_the_clusters_is_refused_before_any_change(primary):
    before = managed_files(primary)
    run = converge("--limit", primary.name, "-e", json.dumps({"postgresql_data_directory": "/srv/pgdata"}))
    assert run.returncode != 0
    message = failure_messages(run.stdout).get(primary.name, "")
    assert message.startswith("postgresql_data_directory is /srv/pgdata, but the existing cluster "), message
    assert recap(run.stdout)[primary.name]["changed"] == 0
    assert managed_files(primary) == before
