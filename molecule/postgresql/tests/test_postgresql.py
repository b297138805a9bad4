"""Behaviour of the database tier after playbooks/harden.yml +
playbooks/database.yml: who may log in from where, what listens, how
configuration changes apply, and that a backup restores the same rows."""
import glob
import re
import json
import socket

import pytest

from conftest import APP_DB, APP_USER, playbook

ROWS = 500


# --- who may log in, from where ---------------------------------------------

def test_app_role_logs_in_from_the_web_host_on_every_version(web, dbs, app_password):
    versions = set()
    for db in dbs:
        result = web.app_sql(db.address, "select current_user, current_setting('server_version_num')", app_password)
        assert result.rc == 0, (db.name, result.stderr)
        user, version = result.stdout.strip().split("|")
        assert user == APP_USER
        versions.add(int(version) // 10000)
    assert versions == {15, 17}  # Debian 12 and Debian 13


def test_wrong_password_is_refused(web, dbs):
    for db in dbs:
        result = web.app_sql(db.address, "select 1", "not-the-password-at-all")
        assert result.rc != 0
        assert "password authentication failed" in result.stderr, db.name


def test_pg_hba_refuses_the_app_role_from_a_host_that_is_not_a_web_host(dbs, app_password):
    # The db host's own private address is not a web host's; ufw does not
    # filter a host's traffic to itself, so this is pg_hba alone.
    for db in dbs:
        result = db.app_sql(db.address, "select 1", app_password)
        assert result.rc != 0
        assert "no pg_hba.conf entry" in result.stderr, db.name


def test_firewall_drops_postgresql_from_other_hosts(dbs):
    # From the other db host and from this controller: no answer on 5432,
    # while SSH on the same address answers.
    other, target = dbs[1], dbs[0]
    probe = other.host.run(
        "python3 -c \"import socket,sys; socket.create_connection((sys.argv[1], 5432), timeout=3)\" "
        f"{target.address}")
    assert probe.rc != 0
    assert "timed out" in probe.stderr
    for db in dbs:
        with socket.create_connection((db.address, 22), timeout=5):
            pass
        with pytest.raises(OSError):
            socket.create_connection((db.address, 5432), timeout=3).close()


def test_app_role_has_no_superpowers(web, dbs, app_password):
    for db in dbs:
        flags = db.sql(f"select rolsuper, rolcreatedb, rolcreaterole, rolreplication "
                       f"from pg_roles where rolname = '{APP_USER}'")
        assert flags == "f|f|f|f", db.name
        denied = web.app_sql(db.address, "create database intruder", app_password)
        assert "permission denied to create database" in denied.stderr
        denied = web.app_sql(db.address, "create role intruder", app_password)
        assert "permission denied to create role" in denied.stderr
        # It owns its database: it may create tables there (PostgreSQL 15+
        # schema rules), and PUBLIC may not connect.
        created = web.app_sql(db.address, "create table owned_here (id int); drop table owned_here", app_password)
        assert created.rc == 0, created.stderr
        assert db.sql(f"select has_database_privilege('public', '{APP_DB}', 'CONNECT')", "postgres") == "f"


def test_only_the_intended_ports_listen(dbs):
    for db in dbs:
        listeners = set()
        for line in db.host.check_output("ss -Htln").splitlines():
            address, port = line.split()[3].rsplit(":", 1)
            if address != "127.0.0.11":  # Docker's resolver, not the host's
                listeners.add((address, int(port)))
        assert {port for _, port in listeners} == {22, 5432}, listeners
        assert {address for address, port in listeners if port == 5432} == {"127.0.0.1", db.address}


# --- sizing -------------------------------------------------------------------

def test_memory_settings_follow_the_host(web, dbs):
    web_cpus = int(web.host.check_output("nproc"))
    for db in dbs:
        ram_mb = int(db.host.check_output("awk '/^MemTotal:/ {print $2}' /proc/meminfo")) // 1024
        settings = dict(line.split("|") for line in db.sql(
            "select name, setting from pg_settings where name in "
            "('shared_buffers', 'effective_cache_size', 'work_mem', 'max_connections')").splitlines())
        assert int(settings["shared_buffers"]) * 8 // 1024 == int(ram_mb * 0.25), db.name
        assert int(settings["effective_cache_size"]) * 8 // 1024 == int(ram_mb * 0.75), db.name
        # One connection per Gunicorn worker of the web host, plus 10 reserved.
        assert int(settings["max_connections"]) == web_cpus * 2 + 1 + 10, db.name
    # The Debian 13 host overrides work_mem in inventory; the other derives it.
    assert dbs[1].sql("show work_mem") == "8MB"
    assert dbs[0].sql("show work_mem") != "8MB"
    assert dbs[1].sql("show data_directory") == "/srv/postgresql/17/main"


def test_a_reload_only_setting_is_applied_without_a_restart(primary):
    pid = primary.postmaster_pid()
    assert primary.sql("show log_min_duration_statement") == "-1"
    changed = playbook("database.yml", "--limit", primary.name,
                       "-e", json.dumps({"postgresql_settings": {"log_min_duration_statement": "250ms"}}))
    assert changed.returncode == 0, changed.stdout[-3000:]
    handler = re.search(r"RUNNING HANDLER \[postgresql : Reload PostgreSQL\][^\n]*\n(?:[^\n]*\n)??(changed|skipping): ", changed.stdout)
    assert handler and handler.group(1) == "changed", changed.stdout[-3000:]
    assert primary.sql("show log_min_duration_statement") == "250ms"
    assert primary.postmaster_pid() == pid
    back = playbook("database.yml", "--limit", primary.name)
    assert back.returncode == 0, back.stdout[-3000:]
    assert primary.sql("show log_min_duration_statement") == "-1"
    assert primary.postmaster_pid() == pid


# --- backups ------------------------------------------------------------------

def dumps(db):
    with db.host.sudo():
        out = db.host.check_output(
            "cd /var/backups/postgresql && for f in .[!.]* *; do [ -e \"$f\" ] && sha256sum \"$f\"; done; true")
    return dict(reversed(line.split()) for line in out.splitlines())


def test_backup_timer_is_scheduled(dbs):
    for db in dbs:
        timer = db.host.service("postgresql-backup.timer")
        assert timer.is_enabled and timer.is_running, db.name


def test_backups_are_private_kept_to_the_retention_and_never_partial(dbs):
    db = dbs[1]  # postgresql_backup_retention: 2
    with db.host.sudo():
        for _ in range(3):
            db.host.check_output("systemctl start postgresql-backup.service && sleep 1.1")
        before = dumps(db)
        assert len(before) == 2 and all(name.startswith(f"{APP_DB}-") for name in before), before
        for name in before:
            f = db.host.file(f"/var/backups/postgresql/{name}")
            assert (f.user, f.mode) == ("postgres", 0o600)
            assert db.host.run(f"runuser -u postgres -- pg_restore --list /var/backups/postgresql/{name}").rc == 0
        # A dump that fails leaves nothing behind and the good ones untouched.
        failed = db.host.run("runuser -u postgres -- /usr/local/sbin/postgresql-backup no_such_database")
    assert failed.rc != 0
    assert dumps(db) == before


def test_backup_then_restore_gives_back_the_same_rows(primary, web, tmp_path, app_password):
    primary.sql(
        f"set role {APP_USER}; drop table if exists posts; "
        f"create table posts (id int primary key, body text); "
        f"insert into posts select i, md5(i::text) from generate_series(1, {ROWS}) i")
    fingerprint = "select count(*), md5(string_agg(id || ':' || body, ',' order by id)) from posts"
    original = primary.sql(fingerprint)
    assert original.startswith(f"{ROWS}|")

    backup = playbook("backup.yml", "--limit", primary.name, "-e", f"postgresql_backup_fetch_dir={tmp_path}")
    assert backup.returncode == 0, backup.stdout[-3000:]
    fetched = glob.glob(f"{tmp_path}/{primary.name}/{APP_DB}-*.dump")
    assert len(fetched) == 1, fetched

    primary.sql("set role forum; delete from posts where id % 2 = 0; update posts set body = 'lost'")
    assert primary.sql(fingerprint) != original

    refused = playbook("restore.yml", "--limit", primary.name, "-e", f"postgresql_restore_dump={fetched[0]}")
    assert refused.returncode != 0
    assert "Refusing to restore" in refused.stdout and "postgresql_restore_confirm" in refused.stdout
    assert primary.sql(fingerprint) != original  # nothing was touched

    restored = playbook("restore.yml", "--limit", primary.name,
                        "-e", f"postgresql_restore_dump={fetched[0]}", "-e", f"postgresql_restore_confirm={APP_DB}")
    assert restored.returncode == 0, restored.stdout[-3000:]
    assert primary.sql(fingerprint) == original
    # The app role owns the restored rows and reads them from the web host.
    assert primary.sql("select tableowner from pg_tables where tablename = 'posts'") == APP_USER
    read = web.app_sql(primary.address, fingerprint, app_password)
    assert read.rc == 0 and read.stdout.strip() == original
