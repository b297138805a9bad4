"""Behaviour of the loadbalancer role converged alone: requests spread over
both backends, a dead backend is skipped without a failed request, HTTP/2
and HTTP/1.1, the backends' headers passed on once, nothing compressed
(BREACH), testssl.sh finds nothing of MEDIUM or above, HTTP redirects,
unknown Hosts get no answer, check mode changes nothing, a wrong setting is
refused before any change."""
import collections
import http.client
import json

import pytest

from testlib import (assert_check_mode_reports_no_change, curl_get, negotiated_alpn, recap, request, run_playbook,
                     run_testssl, scenario_converge_playbook, serious_tls_findings)

VHOST = "/etc/nginx/sites-available/forum-lb.conf"
REQUESTS = 20


def backends_answering(lb, count=REQUESTS):
    """GET / `count` times through the load balancer: {backend: answers};
    every answer must be a 200."""
    seen = collections.Counter()
    for i in range(count):
        status, _, body = request(lb.address, f"/?n={i}")
        assert status == 200, (i, status, body[:300])
        seen[json.loads(body)["backend"]] += 1
    return seen


def test_check_mode_on_the_converged_host_reports_no_change():
    assert_check_mode_reports_no_change()


def test_https_offers_http2(lb):
    assert negotiated_alpn(lb.address) == "h2"


def test_http2_is_negotiated_and_http1_1_still_served(lb):
    assert curl_get(lb.address, "/", http="2")[0] == "HTTP/2 200"
    assert curl_get(lb.address, "/", http="1.1")[0] == "HTTP/1.1 200 OK"


@pytest.mark.parametrize("http", ["2", "1.1"])
def test_the_backends_security_headers_are_passed_on_once(lb, http):
    _, fields = curl_get(lb.address, "/boards", http=http)
    names = [name for name, _ in fields]
    owned = ("content-security-policy", "x-content-type-options", "x-frame-options", "referrer-policy",
             "permissions-policy")
    assert {name: names.count(name) for name in owned} == dict.fromkeys(owned, 1), fields
    # Self-signed certificate: no HSTS from the load balancer.
    assert "strict-transport-security" not in names


def test_answers_are_not_compressed(lb):
    # BREACH: a backend's page (text/html, which nginx would gzip by
    # default) comes through uncompressed whatever the client accepts.
    status, headers, body = request(lb.address, "/boards?q=" + "a" * 600,
                                    headers={"Accept-Encoding": "gzip, deflate, br"})
    assert status == 200 and headers["content-type"].startswith("text/html") and len(body) > 600
    assert "content-encoding" not in headers


def test_testssl_finds_nothing_of_medium_or_above(lb):
    graded = run_testssl(lb.address)
    # Accepted: no server cipher order (testssl rates it HIGH); every suite
    # offered is AEAD with forward secrecy, so the client's pick is never
    # weak (the reasoning: roles/nginx/README.md, "Cipher order").
    assert serious_tls_findings(graded, accepted={"cipher_order"}) == []
    verdict = {f["id"]: f["finding"] for f in graded}
    for weak in ("NULL", "aNULL", "EXPORT", "LOW", "3DES_IDEA", "AVERAGE"):
        assert verdict[f"cipherlist_{weak}"] == "not offered", weak
    assert verdict["ALPN_HTTP2"] == "h2"
    assert verdict["BREACH"].startswith("not vulnerable"), verdict["BREACH"]


def test_requests_spread_over_both_backends(lb):
    seen = backends_answering(lb)
    assert set(seen) == set(lb.vars["loadbalancer_backends"]), seen
    assert min(seen.values()) >= REQUESTS // 4, seen


def test_backends_get_the_client_headers(lb):
    status, _, body = request(lb.address, "/boards?page=2")
    assert status == 200
    seen = json.loads(body)
    assert seen["path"] == "/boards?page=2"
    assert seen["headers"]["X-Forwarded-Proto"] == "https"
    assert seen["headers"]["Host"] == lb.address
    assert seen["headers"]["X-Forwarded-For"].split(",")[-1].strip() == lb.address.rsplit(".", 1)[0] + ".1"


def test_a_dead_backend_is_skipped(lb):
    dead, alive = lb.vars["loadbalancer_backends"]
    with lb.host.sudo():
        lb.host.check_output(f"systemctl stop fixture-backend@{dead}.service")
    try:
        # No request fails: the ones sent to the dead backend go on to the
        # other (proxy_next_upstream), and after max_fails it is left out.
        seen = backends_answering(lb)
        assert seen == {alive: REQUESTS}, seen
    finally:
        with lb.host.sudo():
            lb.host.check_output(f"systemctl start fixture-backend@{dead}.service")


def test_http_redirects_to_https(lb):
    status, headers, _ = request(lb.address, "/boards?page=2", scheme="http")
    assert status == 301
    assert headers["location"] == f"https://{lb.address}/boards?page=2"


def test_unknown_host_gets_no_answer(lb):
    with pytest.raises(http.client.RemoteDisconnected):
        request(lb.address, "/", host="not-this-site.example")
    assert request(lb.address, "/", host="localhost")[0] == 200


def test_a_wrong_setting_is_refused_before_any_change(lb):
    with lb.host.sudo():
        before = lb.host.check_output(f"sha256sum {VHOST} /etc/nginx/sites-enabled/*")
    run = run_playbook(scenario_converge_playbook(), "-e",
                       json.dumps({"loadbalancer_backends": ["127.0.0.2", "backend.example; return 200"]}))
    assert run.returncode != 0
    assert 'loadbalancer_backends = ["backend.example; return 200"] is wrong' in run.stdout, run.stdout[-3000:]
    assert recap(run.stdout)[lb.name]["changed"] == 0
    with lb.host.sudo():
        assert lb.host.check_output(f"sha256sum {VHOST} /etc/nginx/sites-enabled/*") == before
    assert request(lb.address)[0] == 200
