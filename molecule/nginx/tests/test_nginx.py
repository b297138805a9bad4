"""Behaviour of the nginx role converged alone: the upstream's page served
over TLS with the security headers, HTTP redirected, unknown Hosts get no
answer, static files from nginx_static_root, check mode changes nothing, a
wrong setting is refused before any change."""
import http.client
import json
import socket
import ssl
import time

import pytest

from testlib import (assert_check_mode_reports_no_change, negotiated_alpn, recap, request, run_playbook,
                     scenario_converge_playbook, tls_context)

VHOST = "/etc/nginx/sites-available/forum.conf"


def test_check_mode_on_the_converged_host_reports_no_change():
    assert_check_mode_reports_no_change()


def test_https_serves_the_upstream_page_with_the_client_headers(web):
    status, headers, body = request(web.address, "/boards?page=2")
    assert status == 200
    assert headers["server"] == "nginx"  # server_tokens off: no version
    seen = json.loads(body)
    # It came from the app on nginx_upstream_socket, with what the app
    # needs to know about the client.
    assert seen["app"] == "fixture" and seen["path"] == "/boards?page=2"
    assert seen["headers"]["X-Forwarded-Proto"] == "https"
    assert seen["headers"]["Host"] == web.address


def test_tls_is_1_2_or_newer(web):
    context = tls_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("ALL:@SECLEVEL=0")
    with socket.create_connection((web.address, 443), timeout=10) as raw:
        with pytest.raises(ssl.SSLError):
            context.wrap_socket(raw, server_hostname=web.address)
    with socket.create_connection((web.address, 443), timeout=10) as raw:
        with tls_context().wrap_socket(raw, server_hostname=web.address) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_https_offers_http2(web):
    assert negotiated_alpn(web.address) == "h2"


def test_security_headers(web):
    _, headers, _ = request(web.address)
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "camera=()" in headers["permissions-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    # Self-signed certificate: no HSTS, a browser could never get past it.
    assert "strict-transport-security" not in headers


def test_http_redirects_to_https(web):
    status, headers, _ = request(web.address, "/boards?page=2", scheme="http")
    assert status == 301
    assert headers["location"] == f"https://{web.address}/boards?page=2"


def test_unknown_host_gets_no_answer(web):
    with socket.create_connection((web.address, 80), timeout=10) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: not-this-site.example\r\nConnection: close\r\n\r\n")
        assert conn.recv(1024) == b""
    with pytest.raises(http.client.RemoteDisconnected):
        request(web.address, "/", host="not-this-site.example")
    # The names it serves still work on the same listeners, including the
    # one from nginx_extra_server_names.
    assert request(web.address, "/", host="localhost")[0] == 200
    assert request(web.address, "/", host="www.fixture.test")[0] == 200


def test_static_files_come_from_nginx_static_root(web):
    status, headers, body = request(web.address, "/static/style.css", headers={"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers.get("content-encoding") == "gzip"
    assert "max-age=3600" in headers["cache-control"]
    assert "max-age=31536000" in request(web.address, "/static/style.css?v=1")[1]["cache-control"]
    # Not the app's answer (which is JSON for every path), and the same
    # bytes as the file.
    plain = request(web.address, "/static/style.css")[2]
    assert plain == web.host.file(f"{web.vars['nginx_static_root']}/style.css").content
    assert request(web.address, "/static/missing.css")[0] == 404


def test_nginx_reaches_the_app_only_through_its_socket(web):
    # Stop the stand-in app: nginx answers 502 (not a stale page), and again
    # 200 once it is back.
    with web.host.sudo():
        web.host.check_output("systemctl stop fixture-app.service")
    try:
        assert request(web.address, "/")[0] == 502
    finally:
        with web.host.sudo():
            web.host.check_output("systemctl start fixture-app.service")
    # The app binds its socket a moment after systemd starts it.
    for _ in range(20):
        if request(web.address, "/")[0] == 200:
            break
        time.sleep(0.5)
    assert request(web.address, "/")[0] == 200


def test_a_wrong_setting_is_refused_before_any_change(web):
    with web.host.sudo():
        before = web.host.check_output(f"sha256sum {VHOST} /etc/nginx/sites-enabled/*")
    run = run_playbook(scenario_converge_playbook(), "-e",
                       json.dumps({"nginx_upstream_socket": "run/app.sock;", "nginx_extra_server_names": ["~^.*$"]}))
    assert run.returncode != 0
    assert 'nginx_upstream_socket = "run/app.sock;" is wrong' in run.stdout, run.stdout[-3000:]
    assert "nginx_server_names" in run.stdout and '"~^.*$"' in run.stdout, run.stdout[-3000:]
    assert recap(run.stdout)[web.name]["changed"] == 0
    with web.host.sudo():
        assert web.host.check_output(f"sha256sum {VHOST} /etc/nginx/sites-enabled/*") == before
    assert request(web.address)[0] == 200
