"""The web tier and its deploys, seen from outside (HTTP, HTTPS: sent from
the load balancer, the one client the web hosts admit; webcheck.py) and
inside (processes, files) on both application servers, then a code-only
release, a broken release that must never go live, and the operator's
fabfile (status, logs, deploy, rollback) against these hosts. The deploy
and rollback under load is test_scaleout.py's, through the load balancer."""
import http.client
import shlex
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
import deploy_under_load as bench  # noqa: E402
from testlib import REPO  # noqa: E402  (the scenario conftest put it on sys.path)
from webcheck import fields, negotiated_alpn, raw_exchange, request, served_releases  # noqa: E402

APP_ROOT = "/srv/forum"


def journal(web, since_cursor_cmd="--since=-2min"):
    with web.host.sudo():
        return web.host.check_output(f"journalctl -u forum.service {since_cursor_cmd} --no-pager -o cat")


# --- nginx -----------------------------------------------------------------

def test_https_serves_the_forum(web):
    status, headers, body = request(web)
    assert status == 200
    assert headers["server"] == "nginx"
    assert b"General" in body


def test_https_offers_http2(web):
    """HTTP/2 by ALPN on both nginx generations: Debian 12's 1.22 takes it
    as a listen flag, Debian 13's 1.26 as `http2 on;`."""
    assert negotiated_alpn(web) == "h2"


def test_http_redirects_to_https(web):
    status, headers, _ = request(web, "/boards?page=2", scheme="http")
    assert status == 301
    assert headers["location"] == f"https://{web.address}/boards?page=2"


def test_security_headers(web):
    _, headers, _ = request(web)
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    # The forum's own value: the app owns this header (roles/nginx/README.md).
    assert headers["referrer-policy"] == "same-origin"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    # Self-signed certificate: no HSTS, a browser could never get past it.
    assert "strict-transport-security" not in headers


@pytest.mark.parametrize("path", ["/", "/static/style.css", "/no/such/page"])
def test_each_security_header_once(web, path):
    # A forum page, a static file from nginx and the forum's 404: the app
    # owns the page headers, nginx fills them in only where it answered.
    _, received, _ = fields(web, path)
    names = [name for name, _ in received]
    once = ("content-security-policy", "x-content-type-options", "x-frame-options", "referrer-policy",
            "permissions-policy")
    assert {name: names.count(name) for name in once} == dict.fromkeys(once, 1), (path, received)
    csp = dict(received)["content-security-policy"]
    assert "script-src 'none'" in csp and "unsafe-inline" not in csp, csp


def test_session_cookie_is_secure_behind_tls(web):
    status, headers, _ = request(web, "/login")
    assert status == 200
    cookie = headers.get("set-cookie", "")
    assert "session=" in cookie
    assert "Secure" in cookie


def test_static_file_comes_from_nginx_not_the_app(web):
    probe = uuid.uuid4().hex
    status, headers, body = request(web, f"/static/style.css?probe={probe}",
                                    headers={"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers.get("content-encoding") == "gzip"
    # Versioned URL (any ?v=...): long cache; plain URL: short.
    assert "max-age=31536000" in request(web, "/static/style.css?v=1")[1]["cache-control"]
    assert "max-age=3600" in request(web, "/static/style.css")[1]["cache-control"]
    # The app logs every request it serves: this one must not be there,
    # while a page request with the same marker is.
    request(web, f"/?probe={probe}x")
    log = journal(web)
    assert f"probe={probe}x" in log
    assert f"style.css?probe={probe}" not in log


def test_unknown_host_gets_no_answer(web):
    answer = raw_exchange(web, 80, b"GET / HTTP/1.1\r\nHost: not-this-site.example\r\nConnection: close\r\n\r\n")
    assert answer == b""
    with pytest.raises(http.client.RemoteDisconnected):
        request(web, "/", host="not-this-site.example")
    # The known names still work on the same listeners.
    assert request(web, "/healthz")[0] == 200
    assert request(web, "/healthz", host="localhost")[0] == 200


# --- the application server ------------------------------------------------

def test_app_server_runs_as_the_app_user(web):
    with web.host.sudo():
        main = web.host.check_output("systemctl show -p MainPID --value forum.service")
        lines = web.host.check_output(f"ps -o user=,args= -p {main} --ppid {main}").splitlines()
    assert len(lines) >= 2, lines  # a master and its workers
    assert {line.split()[0] for line in lines} == {"forum"}
    assert all(web.server in line for line in lines), lines


def test_app_user_cannot_write_the_release(web):
    with web.host.sudo():
        release = web.host.check_output(f"readlink -f {APP_ROOT}/current")
        for target in ("wsgi.py", ".venv/bin/python3", "forum/static/new.css"):
            result = web.host.run(f"runuser -u forum -- touch {release}/{target}")
            assert result.rc != 0, target
        env = web.host.file(f"{APP_ROOT}/shared/.env")
        assert (env.user, env.mode) == ("forum", 0o600)


def test_release_installs_with_no_network_from_the_shipped_wheels(web):
    """A web host needs no package index: the wheels the controller shipped
    install the live release's requirements in a network namespace that has
    no network at all (the deploy's own build ran pip with --no-index)."""
    script = (
        f"set -e; t=$(mktemp -d -p {APP_ROOT}/shared/cache); trap 'rm -rf \"$t\"' EXIT; mkdir \"$t/wheels\"; "
        f"tar -xf {APP_ROOT}/shared/cache/wheelhouse.tar -C \"$t/wheels\"; "
        "python3 -m venv \"$t/venv\"; "
        "\"$t/venv/bin/pip\" install --quiet --disable-pip-version-check --no-index "
        f"--find-links \"$t/wheels\" -r \"$(readlink -f {APP_ROOT}/current)/requirements.txt\"; "
        "\"$t/venv/bin/python\" -c 'import flask, flask_sqlalchemy, psycopg, gunicorn, nh3'"
    )
    with web.host.sudo():
        result = web.host.run(f"unshare --net sh -c {shlex.quote(script)}")
    assert result.rc == 0, result.stdout + result.stderr


def test_units_are_enabled_and_the_socket_is_nginx_only(web):
    for unit in ("nginx", "forum.socket", "forum.service"):
        assert web.host.service(unit).is_enabled, unit
    with web.host.sudo():
        sock = web.host.file("/run/forum/app.sock")
        assert (sock.user, sock.mode) == ("www-data", 0o600)


# --- deploys ---------------------------------------------------------------

def venv_state(node):
    """{release: where its .venv points}, the virtualenvs under shared/venvs
    and the mtime of each one's completion mark."""
    with node.host.sudo():
        links = node.host.check_output(
            f"for r in {APP_ROOT}/releases/*; do echo \"$(basename $r) $(readlink $r/.venv)\"; done")
        venvs = node.host.check_output(
            f"for v in {APP_ROOT}/shared/venvs/*; do echo \"$v $(stat -c %Y $v/.complete 2>/dev/null)\"; done")
    return (dict(line.split(" ", 1) for line in links.splitlines()),
            dict(line.split(" ", 1) for line in venvs.splitlines()))


def test_code_only_release_builds_no_virtualenv_and_unused_ones_go(webs, inventory):
    """Releases with the same requirements share one root-owned virtualenv:
    a deploy that changes only code links the release to it (nothing built);
    when releases beyond forum_keep_releases go, a virtualenv no kept
    release links to goes too (here a leftover of an interrupted build)."""
    before = {}
    for node in webs:
        links, venvs = venv_state(node)
        assert len(venvs) == 1 and set(links.values()) == set(venvs), (node.name, links, venvs)
        with node.host.sudo():
            node.host.check_output(f"mkdir {APP_ROOT}/shared/venvs/0123456789abcdef")
            owner = node.host.file(next(iter(venvs))).user
        assert owner == "root"
        before[node.name] = venvs
    # Through the operator's `fab deploy` (it runs playbooks/deploy.yml).
    source = bench.app_copy(f"code only {uuid.uuid4()}")
    result = fab("deploy", inventory, "--serial", "2",
                 "--extra", f"-e forum_source_dir={source} -e forum_keep_releases=2")
    shutil.rmtree(source.parent, ignore_errors=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "+ " in result.stdout and "playbooks/deploy.yml" in result.stdout
    for node in webs:
        links, venvs = venv_state(node)
        live = node.host.check_output(f"basename $(readlink {APP_ROOT}/current)")
        assert len(links) == 2 and live in links, (node.name, links)
        # The same virtualenv, not rebuilt; the orphan is gone.
        assert venvs == before[node.name], (node.name, venvs)
        assert set(links.values()) == set(venvs), (node.name, links)


# --- the fabfile ------------------------------------------------------------

def fab(task, inventory, *args):
    """`fab TASK --inventory INVENTORY ARGS` from the repository, as an
    operator runs it; returns the CompletedProcess."""
    argv = [bench.tool("fab"), "-r", str(REPO), task, "--inventory", str(inventory), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=900, cwd=REPO, check=False)


def live_releases(node):
    return tuple(node.host.check_output(f"basename $(readlink {APP_ROOT}/{link}) 2>/dev/null || echo none")
                 for link in ("current", "previous"))


def test_fab_status_and_logs_report_every_web_host(webs, inventory):
    result = fab("status", inventory)
    assert result.returncode == 0, result.stderr
    for node in webs:
        live, previous = live_releases(node)
        server = {"gunicorn": "Gunicorn", "uwsgi": "uWSGI"}[node.server]
        report = result.stdout.split(f"{node.name}: ", 1)[1].splitlines()
        assert report[0].startswith(f"release {live} (previous {previous}), ") and server in report[0], report
        assert f'"release":"{live}"' in report[1] and '"database":"ok"' in report[1], report
        assert report[2] == "  services: forum.socket=active, forum.service=active, nginx=active", report
    result = fab("logs", inventory, "--lines", "5")
    assert result.returncode == 0, result.stderr
    sections = result.stdout.split("===== ")
    for node in webs:
        journal_lines = next(part for part in sections if part.startswith(f"{node.name}: forum.service"))
        assert 2 <= len(journal_lines.splitlines()) <= 6, journal_lines
        assert any(part.startswith(f"{node.name}: nginx error log") for part in sections)


def inventory_with_ssh_args(inventory, tmp_path, ssh_args):
    """A copy of the scenario's inventory whose web hosts use `ssh_args`."""
    copy = tmp_path / "inventory"
    shutil.copytree(inventory, copy, symlinks=False)
    (copy / "group_vars" / "web").mkdir(parents=True, exist_ok=True)
    (copy / "group_vars" / "web" / "ssh.yml").write_text(f"ansible_ssh_common_args: {ssh_args}\n")
    return copy


def test_fab_refuses_a_host_whose_key_it_does_not_know(webs, inventory, tmp_path):
    """Fabric alone accepts any host key; the fabfile checks it as Ansible's
    ssh would. Here the inventory names an empty known_hosts and strict
    checking: no command runs, the error names the host."""
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    copy = inventory_with_ssh_args(inventory, tmp_path,
                                   f"-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes")
    result = fab("status", copy)
    assert result.returncode != 0
    assert "not found in known_hosts" in result.stderr, result.stderr[-2000:]
    for node in webs:
        assert f"{node.name}: cannot connect to {node.address}:22" in result.stderr
    assert "release" not in result.stdout


def test_fab_says_it_does_not_follow_a_jump_host(webs, inventory, tmp_path):
    """A bastion in ansible_ssh_common_args: fab stops before connecting
    anywhere (it would otherwise go straight to the address)."""
    # 192.0.2.1 (TEST-NET-1) is never contacted: the check comes first.
    copy = inventory_with_ssh_args(inventory, tmp_path, "-o ProxyJump=deploy@192.0.2.1")
    result = fab("logs", copy)
    assert result.returncode != 0
    assert "ProxyJump or ProxyCommand, which fab does not follow; nothing was run" in result.stderr
    assert all(node.name in result.stderr for node in webs)
    assert "=====" not in result.stdout


def test_fab_rolls_back_to_a_named_release(webs, inventory):
    before = {node.name: live_releases(node) for node in webs}
    assert all(previous != "none" for _, previous in before.values()), before
    target = next(iter(before.values()))[1]
    result = fab("rollback", inventory, "--to", target)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    for node in webs:
        assert live_releases(node) == (target, before[node.name][0])
    assert set(served_releases(webs)({node.name: node.address for node in webs}).values()) == {target}
    # A release that does not exist: the playbook's check names it and fab
    # exits non-zero with nothing changed.
    result = fab("rollback", inventory, "--to", "no-such-release")
    assert result.returncode != 0
    assert "forum_rollback_to no-such-release is not a complete release" in result.stdout
    for node in webs:
        assert live_releases(node)[0] == target


def test_broken_release_never_goes_live(webs, inventory):
    addresses = {node.name: node.address for node in webs}
    before = served_releases(webs)(addresses)
    counts = {node.name: node.host.check_output(f"ls {APP_ROOT}/releases | wc -l") for node in webs}
    source = bench.app_copy(f"broken {uuid.uuid4()}", broken=True)
    _, result = bench.playbook(inventory, "deploy.yml", "-e", f"forum_source_dir={source}",
                               "-e", "forum_deploy_serial=1")
    shutil.rmtree(source.parent, ignore_errors=True)
    assert result.returncode != 0
    assert "failed its health check on the side socket" in result.stdout
    assert "deliberately broken release" in result.stdout
    assert served_releases(webs)(addresses) == before
    # Rolling: the first batch stopped the play, the second host never got
    # the release at all.
    last = webs[-1]
    assert last.host.check_output(f"ls {APP_ROOT}/releases | wc -l") == counts[last.name]
