"""Behaviour of the loadbalancer role converged alone: requests spread over
both backends, a dead backend is skipped without a failed request, HTTP
redirects, unknown Hosts get no answer, check mode changes nothing, a wrong
setting is refused before any change."""
import collections
import http.client
import json

import pytest

from testlib import (assert_check_mode_reports_no_change, negotiated_alpn, recap, request, run_playbook,
                     scenario_converge_playbook)

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
