"""Behaviour of the nginx role converged alone: the upstream's page served
over TLS (HTTP/2 and HTTP/1.1) with each security header once, never
compressed (BREACH), HTTP redirected, unknown Hosts get no answer, static
files from nginx_static_root, testssl.sh finds nothing of MEDIUM or above,
check mode changes nothing, a wrong setting is refused before any change."""
import http.client
import json
import socket
import ssl
import time

import pytest
import yaml

from testlib import (REPO, assert_check_mode_reports_no_change, curl_get, negotiated_alpn, recap, request, run_playbook,
                     run_testssl, scenario_converge_playbook, serious_tls_findings, tls_context)

VHOST = "/etc/nginx/sites-available/forum.conf"
# The headers an app owns (the fixture app sends them, in values of its
# own: prepare.yml), which nginx adds only where no app answered.
APP_OWNED = ("content-security-policy", "x-content-type-options", "x-frame-options", "referrer-policy")
FIXTURE_APP_HEADERS = {
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "SAMEORIGIN",
    "referrer-policy": "no-referrer",
}
# nginx owns these on every answer.
NGINX_OWNED = ("permissions-policy",)


def security_headers_once(fields):
    """{name: value} of the security headers in curl_get's `fields`; each
    must be there exactly once."""
    names = APP_OWNED + NGINX_OWNED
    counts = {name: [n for n, _ in fields].count(name) for name in names}
    assert counts == dict.fromkeys(names, 1), counts
    return {n: v for n, v in fields if n in names}


@pytest.fixture(scope="module")
def graded(web):
    """testssl.sh's findings on the HTTPS listener, one run for the module
    (about two minutes)."""
    return run_testssl(web.address)


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


def test_http2_is_negotiated_and_http1_1_still_served(web):
    status, _ = curl_get(web.address, "/", http="2")
    assert status == "HTTP/2 200"
    status, _ = curl_get(web.address, "/", http="1.1")
    assert status == "HTTP/1.1 200 OK"


@pytest.mark.parametrize("http", ["2", "1.1"])
def test_an_app_page_carries_the_apps_security_headers_once(web, http):
    _, fields = curl_get(web.address, "/boards", http=http)
    seen = security_headers_once(fields)
    # The app's own values, not nginx's: the app owns these.
    assert {name: seen[name] for name in APP_OWNED} == FIXTURE_APP_HEADERS
    assert "camera=()" in seen["permissions-policy"]
    # Self-signed certificate: no HSTS, a browser could never get past it.
    assert "strict-transport-security" not in dict(fields)


def nginx_defaults(seen):
    """nginx's own values of the headers an app owns (the role's defaults)."""
    defaults = yaml.safe_load((REPO / "roles/nginx/defaults/main.yml").read_text())
    assert seen["x-content-type-options"] == "nosniff"
    assert seen["x-frame-options"] == "DENY"
    assert seen["referrer-policy"] == "same-origin"
    assert seen["content-security-policy"] == " ".join(defaults["nginx_content_security_policy"].split())


def test_an_app_answer_without_security_headers_gets_nginxs_once(web):
    status, fields = curl_get(web.address, "/bare/page")
    assert status == "HTTP/2 200"
    nginx_defaults(security_headers_once(fields))


@pytest.mark.parametrize("path, status", [("/static/style.css", "HTTP/2 200"), ("/static/missing.css", "HTTP/2 404")])
def test_static_files_and_nginx_errors_carry_the_security_headers_once(web, path, status):
    answer, fields = curl_get(web.address, path)
    assert answer == status
    nginx_defaults(security_headers_once(fields))


def test_app_answers_are_never_compressed(web):
    # BREACH: the app's pages carry the CSRF token; nginx does not gzip
    # them, whatever the client accepts (static files it does: below).
    status, headers, body = request(web.address, "/boards?q=" + "a" * 600,
                                    headers={"Accept-Encoding": "gzip, deflate, br"})
    assert status == 200 and len(body) > 600
    assert "content-encoding" not in headers
    assert json.loads(body)["app"] == "fixture"


def test_testssl_finds_nothing_of_medium_or_above(graded):
    # Accepted: no server cipher order (testssl rates it HIGH). Every suite
    # offered is AEAD with forward secrecy (the cipher lists below show no
    # other), so a client choosing among them cannot choose a weak one;
    # letting it choose gives ChaCha20 to clients without AES hardware
    # (Mozilla's intermediate profile: ssl_prefer_server_ciphers off).
    assert serious_tls_findings(graded, accepted={"cipher_order"}) == []
    verdict = {f["id"]: f["finding"] for f in graded}
    for weak in ("NULL", "aNULL", "EXPORT", "LOW", "3DES_IDEA", "AVERAGE"):
        assert verdict[f"cipherlist_{weak}"] == "not offered", weak
    forward_secrecy = verdict.get("FS", verdict.get("PFS"))  # testssl 3.2 / 3.0
    assert forward_secrecy.startswith("offered"), forward_secrecy
    assert verdict["ALPN_HTTP2"] == "h2"
    # BREACH: testssl saw no HTTP compression.
    assert verdict["BREACH"].startswith("not vulnerable"), verdict["BREACH"]


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
        # nginx's own error page: nginx's security headers, once each.
        status, fields = curl_get(web.address, "/")
        assert status == "HTTP/2 502"
        nginx_defaults(security_headers_once(fields))
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
