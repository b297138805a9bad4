"""Behaviour of the forum role converged alone (a fixture database and a
relay standing in for nginx): the app answers on its socket and its health
endpoint, migrations ran, the units are enabled and survive a restart and
a crash, check mode changes nothing, a wrong setting is refused before any
change."""
import json
import re
import shlex
import time
from pathlib import Path

from testlib import assert_check_mode_reports_no_change, recap, run_playbook, scenario_converge_playbook



def _head_revision() -> str:
    """The one migration of app/migrations/versions that no other one follows."""
    revisions, parents = set(), set()
    for path in (Path(__file__).resolve().parents[3] / "app/migrations/versions").glob("*.py"):
        text = path.read_text()
        revisions.add(re.search(r'^revision\b.*?["\'](\w+)["\']', text, re.M).group(1))
        parent = re.search(r'^down_revision\b.*?["\'](\w+)["\']', text, re.M)
        if parent:
            parents.add(parent.group(1))
    heads = revisions - parents
    assert len(heads) == 1, f"migrations must have one head, found {sorted(heads)}"
    return heads.pop()


HEAD_REVISION = _head_revision()
UNITS = "/etc/systemd/system/forum.service /etc/systemd/system/forum.socket /srv/forum/shared/.env"


def wait_healthy(web, seconds=30):
    deadline = time.monotonic() + seconds
    while True:
        status, body = web.socket_get("/healthz")
        if status == 200 or time.monotonic() > deadline:
            return status, body
        time.sleep(1)


def test_check_mode_on_the_converged_host_reports_no_change():
    assert_check_mode_reports_no_change()


def test_health_endpoint_names_the_live_release_and_the_database(web):
    health = web.health()
    live = web.host.check_output("readlink -f /srv/forum/current")
    assert health["status"] == "ok" and health["database"] == "ok", health
    assert health["release"] == live.rsplit("/", 1)[1]


def test_app_serves_pages_on_its_socket(web):
    status, body = web.socket_get("/")
    assert status == 200
    assert "General" in body  # the board the role created
    # The relay standing in for nginx gets the same app.
    relayed = web.host.run("python3 -c \"import urllib.request as u; "
                           "print(u.urlopen('http://127.0.0.1:8080/healthz', timeout=10).status)\"")
    assert relayed.stdout.strip() == "200", relayed.stderr


def test_a_chinese_browser_gets_chinese_pages_through_the_proxy(web):
    """The release's catalogs were compiled (forum role, build.yml): Accept-Language
    zh-CN through the relay standing in for nginx gives the Chinese page, and without
    it the English one (the page cache keeps both apart)."""
    fetch = ("import sys, urllib.request as u; "
             "r = u.Request('http://127.0.0.1:8080/', headers={'Accept-Language': sys.argv[1]}); "
             "print(u.urlopen(r, timeout=10).read().decode())")
    for _ in range(2):  # the second time from the page cache
        chinese = web.host.run(f"python3 -c {shlex.quote(fetch)} zh-CN,zh;q=0.9")
        assert chinese.rc == 0, chinese.stderr
        assert '<html lang="zh-CN">' in chinese.stdout and "<h1>版块</h1>" in chinese.stdout
        english = web.host.run(f"python3 -c {shlex.quote(fetch)} en-US")
        assert english.rc == 0, english.stderr
        assert "<h1>Boards</h1>" in english.stdout and "版块" not in english.stdout
    release = web.host.check_output("readlink -f /srv/forum/current")
    assert web.host.file(f"{release}/forum/translations/zh_Hans_CN/LC_MESSAGES/messages.mo").is_file


def test_only_the_socket_user_may_connect(web):
    status, error = web.socket_get("/healthz", user="nobody")
    assert status is None and "PermissionError" in error, error


def test_migrations_ran_and_the_boards_exist(web):
    assert web.sql("select version_num from alembic_version") == HEAD_REVISION
    assert web.sql("select name from boards order by name") == "General"
    # The app's tables belong to its login role, not to the superuser.
    assert web.sql("select distinct tableowner from pg_tables where schemaname = 'public'") == "forum"


def test_app_runs_as_the_app_user_with_its_workers(web):
    pid = web.main_pid()
    lines = web.host.check_output(f"ps -o user=,args= -p {pid} --ppid {pid}").splitlines()
    assert len(lines) == 1 + 2, lines  # the master and forum_workers (2) workers
    assert {line.split()[0] for line in lines} == {"forum"}, lines


def test_units_are_enabled_and_survive_a_restart_and_a_crash(web):
    for unit in ("forum.socket", "forum.service"):
        assert web.host.service(unit).is_enabled, unit
    before = web.main_pid()
    with web.host.sudo():
        web.host.check_output("systemctl restart forum.service")
    restarted = web.main_pid()
    assert restarted not in (before, "0")
    assert wait_healthy(web)[0] == 200
    # Killed hard: systemd starts it again (Restart=on-failure).
    with web.host.sudo():
        web.host.check_output(f"kill -9 {restarted}")
    assert wait_healthy(web)[0] == 200
    assert web.main_pid() not in (restarted, "0")


def test_a_wrong_setting_is_refused_before_any_change(web):
    with web.host.sudo():
        before = web.host.check_output(f"sha256sum {UNITS}")
    run = run_playbook(scenario_converge_playbook(), "-e",
                       json.dumps({"forum_workers": 0, "forum_socket": "run/forum.sock"}))
    assert run.returncode != 0
    assert 'forum_workers = 0 is wrong' in run.stdout, run.stdout[-3000:]
    assert 'forum_socket = "run/forum.sock" is wrong' in run.stdout, run.stdout[-3000:]
    assert recap(run.stdout)[web.name]["changed"] == 0
    with web.host.sudo():
        assert web.host.check_output(f"sha256sum {UNITS}") == before
    assert web.health()["status"] == "ok"
