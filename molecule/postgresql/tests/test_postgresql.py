"""Behaviour of the postgresql role converged alone: who may log in from
where and how (SCRAM), what the app role may do, what listens, which
settings the server runs with, how a change applies, and that a backup
restores the same rows."""
import glob
import json
import re
import socket

from conftest import APP_DB, APP_USER, controller_sql, converge, playbook
from testlib import assert_check_mode_reports_no_change

ROWS = 500


def test_check_mode_on_the_converged_hosts_reports_no_change():
    assert_check_mode_reports_no_change()


# --- who may log in, from where ---------------------------------------------

def test_app_role_logs_in_from_the_allowed_address_on_every_version(pairs, app_password):
    versions = set()
    for db, client in pairs:
        result = client.app_sql(db.address, "select current_user, current_setting('server_version_num')",
                                app_password)
        assert result.rc == 0, (db.name, result.stderr)
        user, version = result.stdout.strip().split("|")
        assert user == APP_USER
        versions.add(int(version) // 10000)
    assert versions == {15, 17}  # Debian 12 and Debian 13


def test_the_login_is_scram(dbs, pairs, app_password):
    # pg-db13's libpq (17) can insist on the method: SCRAM is accepted, and
    # a client that allows only a clear-text password is refused because
    # the server asks for SASL (SCRAM).
    db12, db13 = dbs
    scram = db13.app_sql(db12.address, "select 1", app_password, "require_auth=scram-sha-256")
    assert scram.rc == 0, scram.stderr
    clear = db13.app_sql(db12.address, "select 1", app_password, "require_auth=password")
    assert clear.rc != 0
    assert "SASL" in clear.stderr, clear.stderr
    for db, client in pairs:
        assert db.sql(f"select left(rolpassword, 14) from pg_authid where rolname = '{APP_USER}'",
                      "postgres") == "SCRAM-SHA-256$"
        rules = db.sql("select type, database[1], user_name[1], address, auth_method from pg_hba_file_rules "
                       "where type <> 'local'", "postgres")
        assert rules == f"host|{APP_DB}|{APP_USER}|{client.address}|scram-sha-256", (db.name, rules)


def test_wrong_password_is_refused(pairs):
    for db, client in pairs:
        result = client.app_sql(db.address, "select 1", "not-the-password-at-all")
        assert result.rc != 0
        assert "password authentication failed" in result.stderr, db.name


def test_login_from_an_address_that_is_not_a_client_is_refused(dbs, app_password):
    for db in dbs:
        # From the controller (the network's gateway address).
        result = controller_sql(db.address, "select 1", app_password)
        assert result.returncode != 0
        assert "no pg_hba.conf entry" in result.stderr, (db.name, result.stderr)
        # From the db host itself, over its private address.
        result = db.app_sql(db.address, "select 1", app_password)
        assert result.rc != 0
        assert "no pg_hba.conf entry" in result.stderr, (db.name, result.stderr)


def test_app_role_has_no_superpowers(pairs, app_password):
    for db, client in pairs:
        flags = db.sql(f"select rolsuper, rolcreatedb, rolcreaterole, rolreplication "
                       f"from pg_roles where rolname = '{APP_USER}'")
        assert flags == "f|f|f|f", db.name
        denied = client.app_sql(db.address, "create database intruder", app_password)
        assert "permission denied to create database" in denied.stderr
        denied = client.app_sql(db.address, "create role intruder", app_password)
        assert "permission denied to create role" in denied.stderr
        # It owns its database: it may create tables there (PostgreSQL 15+
        # schema rules), and PUBLIC may not connect.
        created = client.app_sql(db.address, "create table owned_here (id int); drop table owned_here",
                                 app_password)
        assert created.rc == 0, created.stderr
        assert db.sql(f"select has_database_privilege('public', '{APP_DB}', 'CONNECT')", "postgres") == "f"


def test_postgresql_listens_on_loopback_and_the_private_address_only(dbs):
    for db in dbs:
        listeners = set()
        for line in db.host.check_output("ss -Htln").splitlines():
            address, port = line.split()[3].rsplit(":", 1)
            listeners.add((address, int(port)))
        assert {address for address, port in listeners if port == 5432} == {"127.0.0.1", db.address}
        # No firewall here (the role alone): the port answers on that address.
        with socket.create_connection((db.address, 5432), timeout=5):
            pass


# --- settings -----------------------------------------------------------------

def test_the_server_runs_with_the_role_settings(dbs):
    for db in dbs:
        ram_mb = int(db.host.check_output("awk '/^MemTotal:/ {print $2}' /proc/meminfo")) // 1024
        settings = dict(line.split("|") for line in db.sql(
            "select name, setting from pg_settings where name in "
            "('shared_buffers', 'effective_cache_size', 'max_connections', 'password_encryption')").splitlines())
        assert int(settings["shared_buffers"]) * 8 // 1024 == int(ram_mb * 0.25), db.name
        assert int(settings["effective_cache_size"]) * 8 // 1024 == int(ram_mb * 0.75), db.name
        # postgresql_client_connections (20) + postgresql_reserved_connections (10).
        assert int(settings["max_connections"]) == 30, db.name
        assert settings["password_encryption"] == "scram-sha-256"
    # The Debian 13 host overrides work_mem and the data directory in
    # inventory; the other derives them.
    assert dbs[1].sql("show work_mem") == "8MB"
    assert dbs[0].sql("show work_mem") != "8MB"
    assert dbs[1].sql("show data_directory") == "/srv/postgresql/17/main"
    assert dbs[0].sql("show data_directory") == "/var/lib/postgresql/15/main"


def test_a_reload_only_setting_is_applied_without_a_restart(primary):
    pid = primary.postmaster_pid()
    assert primary.sql("show log_min_duration_statement") == "-1"
    changed = converge("--limit", primary.name,
                       "-e", json.dumps({"postgresql_settings": {"log_min_duration_statement": "250ms"}}))
    assert changed.returncode == 0, changed.stdout[-3000:]
    handler = re.search(r"RUNNING HANDLER \[postgresql : Reload PostgreSQL\][^\n]*\n(?:[^\n]*\n)??(changed|skipping): ",
                        changed.stdout)
    assert handler and handler.group(1) == "changed", changed.stdout[-3000:]
    assert primary.sql("show log_min_duration_statement") == "250ms"
    assert primary.postmaster_pid() == pid
    back = converge("--limit", primary.name)
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


def test_backup_then_restore_gives_back_the_same_rows(primary, dbs, tmp_path, app_password):
    client = dbs[1]
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

    primary.sql(f"set role {APP_USER}; delete from posts where id % 2 = 0; update posts set body = 'lost'")
    assert primary.sql(fingerprint) != original

    refused = playbook("restore.yml", "--limit", primary.name, "-e", f"postgresql_restore_dump={fetched[0]}")
    assert refused.returncode != 0
    assert "Refusing to restore" in refused.stdout and "postgresql_restore_confirm" in refused.stdout
    assert primary.sql(fingerprint) != original  # nothing was touched

    restored = playbook("restore.yml", "--limit", primary.name,
                        "-e", f"postgresql_restore_dump={fetched[0]}", "-e", f"postgresql_restore_confirm={APP_DB}")
    assert restored.returncode == 0, restored.stdout[-3000:]
    assert primary.sql(fingerprint) == original
    # The app role owns the restored rows and reads them from its client.
    assert primary.sql("select tableowner from pg_tables where tablename = 'posts'") == APP_USER
    read = client.app_sql(primary.address, fingerprint, app_password)
    assert read.rc == 0 and read.stdout.strip() == original
