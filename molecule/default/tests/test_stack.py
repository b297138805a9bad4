"""Behaviour of the whole stack after site.yml, seen from outside and inside."""
import json
import socket
import ssl
import urllib.error
import urllib.request

import pytest

APP_ROOT = "/srv/forum"
ENV_FILE = f"{APP_ROOT}/shared/.env"


# The lab's certificate is self-signed.
INSECURE = ssl._create_unverified_context()  # noqa: S323


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def http_get(url, timeout=10):
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=INSECURE) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def app_env(web):
    with web.host.sudo():
        text = web.host.file(ENV_FILE).content_string
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))


# --- the forum, through nginx ---------------------------------------------

def test_front_page_is_served_by_nginx_from_the_database(web):
    status, headers, body = http_get(f"https://{web.address}/")
    assert status == 200
    assert headers.get("Server", "").startswith("nginx")
    assert "<title>" in body and "Forum" in body
    # The board the deploy created lives in PostgreSQL on the db host.
    assert "General" in body
    assert headers.get("X-Content-Type-Options") == "nosniff"


def test_plain_http_redirects_to_https(web):
    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(f"http://{web.address}/", timeout=10)
        status, location = 200, ""
    except urllib.error.HTTPError as error:
        status, location = error.code, error.headers.get("Location", "")
    assert status == 301
    assert location.startswith(f"https://{web.address}")


def test_health_check_makes_a_database_round_trip(web):
    status, _, body = http_get(f"https://{web.address}/healthz")
    assert status == 200
    health = json.loads(body)
    assert health["status"] == "ok"
    assert health["database"] == "ok"


def test_static_files_come_from_nginx(web):
    css = web.host.run(f"find {APP_ROOT}/current/forum/static -name '*.css' -printf '%P\\n'").stdout.split()
    assert css, "the app ships no stylesheet"
    status, headers, _ = http_get(f"https://{web.address}/static/{css[0]}")
    assert status == 200
    # Set by nginx's `expires`, which the app's own static route does not do.
    assert "max-age=3600" in headers.get("Cache-Control", "")


# --- the app server --------------------------------------------------------

def test_gunicorn_runs_as_the_app_user_not_root(web):
    lines = web.host.run("ps -eo user:32=,args= | grep '[g]unicorn'").stdout.splitlines()
    assert lines, "no gunicorn process"
    assert {line.split()[0] for line in lines} == {"forum"}


def test_app_user_cannot_write_the_release(web):
    with web.host.sudo():
        release = web.host.run(f"readlink -f {APP_ROOT}/current").stdout.strip()
        result = web.host.run(f"runuser -u forum -- touch {release}/wsgi.py")
    assert result.rc != 0


def test_app_server_and_nginx_are_enabled(web):
    for unit in ("nginx", "forum.socket", "forum.service"):
        assert web.host.service(unit).is_enabled, unit
    assert web.host.service("forum.service").is_running


# --- PostgreSQL: least privilege, web hosts only ---------------------------

def test_web_host_logs_in_as_the_app_role(web):
    script = (
        "import os, psycopg; "
        "url = os.environ['DATABASE_URL'].replace('postgresql+psycopg', 'postgresql'); "
        "print(psycopg.connect(url, connect_timeout=5).execute('select current_user').fetchone()[0])"
    )
    with web.host.sudo():
        result = web.host.run(
            f"set -a; . {ENV_FILE}; {APP_ROOT}/current/.venv/bin/python -c \"{script}\"")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == app_env(web)["DATABASE_URL"].split("//")[1].split(":")[0]


def test_app_role_is_refused_from_a_host_that_is_not_a_web_host(web, db):
    # The db host itself is not a web host: pg_hba has no line for it, even
    # with the right password.
    url = app_env(web)["DATABASE_URL"]
    password = url.split("//")[1].split("@")[0].split(":")[1]
    user = url.split("//")[1].split(":")[0]
    script = (
        "import sys, psycopg2\n"
        "try:\n"
        f"    psycopg2.connect(host='{db.address}', dbname='{user}', user='{user}', password=sys.stdin.read(), connect_timeout=5)\n"
        "except psycopg2.OperationalError as e:\n"
        "    print(e); sys.exit(3)\n"
    )
    result = db.host.run(f"printf %s '{password}' | python3 -c \"{script}\"")
    assert result.rc == 3
    assert "no pg_hba.conf entry" in result.stdout


def test_postgresql_port_is_closed_to_other_hosts(db):
    # This controller is not a web host: ufw drops its packets to 5432,
    # while SSH on the same address answers.
    with socket.create_connection((db.address, 22), timeout=5):
        pass
    with pytest.raises(OSError):
        socket.create_connection((db.address, 5432), timeout=3).close()


def test_app_role_has_no_superpowers(db):
    with db.host.sudo("postgres"):
        flags = db.host.check_output(
            "psql -tA -c \"select rolsuper, rolcreatedb, rolcreaterole from pg_roles where rolname = 'forum'\"")
    assert flags == "f|f|f"


def test_postgresql_authenticates_with_scram_only(db):
    with db.host.sudo():
        hba = db.host.check_output("cat /etc/postgresql/*/main/pg_hba.conf")
    methods = {line.split()[-1] for line in hba.splitlines() if line and not line.startswith("#")}
    assert methods == {"peer", "scram-sha-256"}


# --- SSH and firewall on every host ----------------------------------------

def test_deploy_user_logs_in_with_its_key_and_can_sudo(all_nodes):
    for node in all_nodes:
        result = node.ssh(node.vars["ansible_user"], "sudo -n id -u")
        assert result.returncode == 0, (node.name, result.stderr)
        assert result.stdout.strip() == "0"


def test_root_login_is_refused(all_nodes):
    for node in all_nodes:
        result = node.ssh("root")
        assert result.returncode == 255, node.name
        assert "Permission denied" in result.stderr


def test_password_login_is_not_offered(all_nodes):
    for node in all_nodes:
        result = node.ssh(node.vars["ansible_user"], "true",
                          "-o", "PubkeyAuthentication=no",
                          "-o", "PreferredAuthentications=password,keyboard-interactive")
        assert result.returncode == 255
        assert "Permission denied (publickey)" in result.stderr


def test_effective_sshd_settings(all_nodes):
    for node in all_nodes:
        with node.host.sudo():
            settings = dict(line.split(" ", 1) for line in node.host.check_output("sshd -T").splitlines() if " " in line)
        assert settings["permitrootlogin"] == "no"
        assert settings["passwordauthentication"] == "no"
        assert settings["kbdinteractiveauthentication"] == "no"


def test_firewall_denies_by_default(all_nodes):
    for node in all_nodes:
        with node.host.sudo():
            status = node.host.check_output("ufw status verbose")
        assert "Status: active" in status
        assert "deny (incoming)" in status
