"""Wrong settings never reach a file: a value that does not fit the grammar
of the file it lands in (an nginx vhost, a systemd unit, uwsgi.ini, the
app's environment file) stops site.yml in its check play, the run names
every such setting, and no host changes (the site keeps serving)."""
import json

from testlib import nodes, recap, run_playbook
from webcheck import request

# Every file the nginx and forum roles write on a web host.
MANAGED = [
    "/etc/nginx/sites-available/forum.conf",
    "/usr/local/sbin/nginx-check-site",
    "/etc/systemd/system/forum.service",
    "/etc/systemd/system/forum.socket",
    "/usr/local/sbin/forum-check-unit",
    "/srv/forum/shared/.env",
    "/srv/forum/current/.env",
    "/etc/forum/uwsgi.ini",
]

# A hostile value for every setting of the nginx and forum roles that lands
# in a file: each would break out of its directive, line or quotes.
HOSTILE = {
    "nginx_server_names": ["forum.example.org", "evil.example; return 200"],
    "nginx_trusted_proxies": ["10.0.0.5; allow all"],
    "nginx_extra_server_names": ["lb.example.org", "lb2.example.org { }"],
    "nginx_http_port": "80;",
    "nginx_https_port": "443\nlisten 9999",
    "nginx_https_redirect_port": "8443 }",
    "nginx_letsencrypt_domain": "forum.example.org\n",
    "nginx_letsencrypt_email": "admin@example.org\"",
    "nginx_hsts_max_age": "1; preload",
    "nginx_tls_protocols": "TLSv1.2; ssl_stapling on",
    "nginx_tls_ciphers": "HIGH}",
    "nginx_upstream_socket": "/run/forum/app.sock fail_timeout=0; }",
    "nginx_static_root": "/srv/forum/static\n",
    "nginx_static_expires_versioned": "365d;",
    "nginx_static_expires": "$arg_x",
    "nginx_client_max_body_size": "2m;",
    "nginx_client_timeout": "15s",
    "nginx_proxy_read_timeout": "60;",
    "nginx_content_security_policy": "default-src 'self'\" always; add_header X \"$host",
    "forum_server": "gunicorn\n",
    "forum_root": "/srv/forum\nExecStartPre=/bin/true",
    "forum_socket": "/run/forum/app.sock;",
    "forum_socket_user": "www-data\nExecStartPre=/bin/sh",
    "forum_user": "forum\"",
    "forum_group": "forum'",
    "forum_workers": "3\nExecStartPre=/bin/sh",
    "forum_timeout": "30}",
    "forum_max_requests": "1000 $x",
    "forum_max_requests_jitter": "100;",
    "forum_db_host": "db1\nX=1",
    "forum_db_port": "5432/evil",
    "forum_db_name": "forum?sslmode=disable",
    "forum_db_user": "forum\"",
    "forum_cookie_secure": "true\nSECRET_KEY=x",
    "forum_keep_releases": "5;",
    "forum_health_timeout": "40{",
    "forum_rollback_to": "..",
}

# The same for the load balancer role: its checks run alone on the
# controller (molecule/scaleout/check-loadbalancer.yml), so that the run
# above stays about the web hosts' roles.
HOSTILE_LB = {
    "loadbalancer_backend_port": "443;",
    "loadbalancer_max_fails": "2 }",
    "loadbalancer_fail_timeout": "10\n",
    "loadbalancer_next_upstream_tries": "$x",
    "loadbalancer_keepalive": "16;",
    "loadbalancer_connect_timeout": "3s",
    "loadbalancer_read_timeout": "15\"",
    "loadbalancer_client_timeout": "15'",
    "loadbalancer_client_max_body_size": "2m; }",
    "loadbalancer_backends": ["10.0.0.11", "10.0.0.12 down; server 10.9.9.9"],
    "loadbalancer_server_names": ["lb.example.org { }"],
    "loadbalancer_https_port": "443 ssl; listen 9999",
    "loadbalancer_tls_ciphers": "HIGH}",
}


def sums(nodes_):
    """sha256 of every managed file on each web host (None: absent)."""
    result = {}
    for node in nodes_:
        with node.host.sudo():
            out = node.host.check_output(
                " ; ".join(f"sha256sum {path} 2>/dev/null || echo '- {path}'" for path in MANAGED))
        result[node.name] = out.splitlines()
    return result


def served(node):
    """The web host still serves the site (asked from the load balancer)."""
    status, headers, body = request(node)
    return status == 200 and headers["server"] == "nginx" and b"General" in body


def test_server_name_with_a_directive_is_refused(webs):
    before = sums(webs)
    value = "evil.example; return 200"
    result = run_playbook("site.yml", "-e", json.dumps({"nginx_server_names": [value]}))
    assert result.returncode != 0
    assert f'nginx_server_names = {json.dumps([value])} is wrong' in result.stdout, result.stdout[-3000:]
    assert sums(webs) == before
    assert all(served(node) for node in webs)


def test_every_hostile_setting_is_named_and_nothing_changes(webs):
    before = sums(webs)
    result = run_playbook("site.yml", "-e", json.dumps(HOSTILE))
    assert result.returncode != 0
    output = result.stdout
    for name, value in HOSTILE.items():
        # The value is shown as JSON (a list shows its wrong elements).
        shown = json.dumps([value[-1]] if isinstance(value, list) else value)
        assert f"{name} = {shown} is wrong" in output, (name, output[-4000:])
    counts = recap(output)
    assert set(counts) >= {node.name for node in webs}, counts
    assert all(host["changed"] == 0 for host in counts.values()), counts
    assert sums(webs) == before
    assert all(served(node) for node in webs)
    for node in nodes("all"):
        login = node.ssh(node.vars.get("users_deploy_name", "deploy"), "sudo -n true")
        assert login.returncode == 0, (node.name, login.stderr)


def test_every_hostile_load_balancer_setting_is_named():
    result = run_playbook("molecule/scaleout/check-loadbalancer.yml", "-e", json.dumps(HOSTILE_LB))
    assert result.returncode != 0
    for name, value in HOSTILE_LB.items():
        shown = json.dumps([value[-1]] if isinstance(value, list) else value)
        assert f"{name} = {shown} is wrong" in result.stdout, (name, result.stdout[-4000:])
    assert recap(result.stdout)["localhost"]["changed"] == 0
