"""The ACME path of the nginx role (web host) and of the loadbalancer role
(lb host, in front of it) against pebble: the certificate served is issued
by pebble's CA (trusted by this test client only), HTTP/2 through the load
balancer, the switch from self-signed to ACME on a live site drops no
request, a forced renewal serves a new serial, the renewal hook never
reloads a broken configuration, and a failed order (a domain pebble cannot
validate, pebble stopped) fails the run naming certbot's error while the
site keeps serving the certificate it had.

The tests run in file order: the last one restarts pebble, which makes a
new root CA and forgets every account."""
import json
import socket
import ssl
import subprocess
import threading
import time
import urllib.request

from testlib import assert_check_mode_reports_no_change, recap, request, run_playbook, scenario_converge_playbook

DOMAIN = "forum.acme.test"
VHOST = "/etc/nginx/sites-available/forum.conf"
LIVE = "/etc/letsencrypt/live/forum"
LB_DOMAIN = "lb.acme.test"
LB_VHOST = "/etc/nginx/sites-available/forum-lb.conf"
LB_LIVE = "/etc/letsencrypt/live/forum-lb"


def pebble_root(pebble):
    """pebble's current root CA (PEM), from its management port, over TLS
    checked against the certificate prepare.yml made for pebble."""
    context = ssl.create_default_context(cafile=pebble.vars["pebble_tls_certificate_file"])
    with urllib.request.urlopen(f"https://{pebble.address}:15000/roots/0", context=context, timeout=10) as answer:
        return answer.read().decode()


def served_certificate(web, root=None, domain=DOMAIN):
    """The certificate the site on `web` serves for `domain`: the parsed,
    verified one when `root` (PEM) is given (raises
    ssl.SSLCertVerificationError if it is not issued under it), else the DER
    bytes."""
    if root is None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cadata=root)
    with socket.create_connection((web.address, 443), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=domain) as tls:
            return tls.getpeercert(binary_form=root is None)


def served_serial(web, pebble, domain=DOMAIN):
    return served_certificate(web, pebble_root(pebble), domain)["serialNumber"]


def wait_for_serial(web, pebble, predicate, seconds=20, domain=DOMAIN):
    """The served serial once `predicate(serial)` holds (nginx's new workers
    take a moment after a reload), or the last one seen."""
    deadline = time.monotonic() + seconds
    serial = served_serial(web, pebble, domain)
    while not predicate(serial) and time.monotonic() < deadline:
        time.sleep(0.5)
        serial = served_serial(web, pebble, domain)
    return serial


def settled_serial(node, pebble, cert_name="forum", domain=DOMAIN):
    """The serial of the certificate in certbot's live lineage, once the
    site serves it (the old workers of an earlier reload may still answer
    for a moment, the more so on a loaded machine)."""
    with node.host.sudo():
        out = node.host.check_output(f"openssl x509 -noout -serial -in /etc/letsencrypt/live/{cert_name}/cert.pem")
    live = int(out.split("=", 1)[1], 16)
    served = wait_for_serial(node, pebble, lambda serial: int(serial, 16) == live, domain=domain)
    assert int(served, 16) == live, (node.name, served, hex(live))
    return served


def converge(*extra):
    return run_playbook(scenario_converge_playbook(), *extra)


def renew_as_the_timer_does(web, cert_name="forum"):
    """`certbot renew --force-renewal` on `web` with the environment of
    certbot.service (the unit certbot.timer starts): the CA for pebble's
    HTTPS comes from the role's drop-in, the reload from its deploy hook."""
    with web.host.sudo():
        return web.host.run(
            "env $(systemctl show -p Environment --value certbot.service) "
            f"certbot renew --force-renewal --no-random-sleep-on-renew --cert-name {cert_name}")


def failure_for(output, domain):
    """The role's failure message for `domain` in a playbook's output (one
    line), up to the next host's result."""
    text = " ".join(output.split())
    marker = f"certbot got no certificate for {domain} "
    assert marker in text, text[-3000:]
    rest = text.split(marker, 1)[1]
    for end in ("fatal:", "TASK [", "PLAY RECAP"):
        rest = rest.split(end, 1)[0]
    return rest


def test_check_mode_on_the_converged_host_reports_no_change():
    assert_check_mode_reports_no_change()


def test_the_site_serves_a_certificate_issued_by_pebble(web, pebble):
    cert = served_certificate(web, pebble_root(pebble))
    assert ("commonName", DOMAIN) in [pair for rdn in cert["subject"] for pair in rdn] or \
        ("DNS", DOMAIN) in cert["subjectAltName"]
    issuer = dict(pair for rdn in cert["issuer"] for pair in rdn)
    assert "Pebble" in issuer["commonName"], issuer
    status, _, body = request(web.address, "/", host=DOMAIN)
    assert status == 200 and json.loads(body)["app"] == "fixture"
    # The web host itself does not trust pebble: certbot alone is handed
    # pebble's HTTPS certificate, the system's trust store is untouched.
    fetch = web.host.run(
        "python3 -c \"import urllib.request; urllib.request.urlopen('https://acme-pebble:14000/dir', timeout=10)\"")
    assert fetch.rc != 0 and "CERTIFICATE_VERIFY_FAILED" in fetch.stderr, fetch.stderr


def test_the_lb_serves_a_certificate_issued_by_pebble_and_h2_through_it(lb, pebble, tmp_path):
    cert = served_certificate(lb, pebble_root(pebble), LB_DOMAIN)
    assert ("DNS", LB_DOMAIN) in cert["subjectAltName"]
    issuer = dict(pair for rdn in cert["issuer"] for pair in rdn)
    assert "Pebble" in issuer["commonName"], issuer
    # curl checks the chain against pebble's root and the name, offers h2,
    # and the answer comes from the web host's app behind the lb.
    root = tmp_path / "pebble-root.pem"
    root.write_text(pebble_root(pebble))
    body = tmp_path / "body.json"
    out = subprocess.run(
        ["curl", "-sS", "--http2", "--max-time", "10", "--cacert", str(root),
         "--resolve", f"{LB_DOMAIN}:443:{lb.address}", "-o", str(body),
         "-w", "%{http_version} %{http_code}", f"https://{LB_DOMAIN}/"],
        capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "2 200", out.stdout
    answer = json.loads(body.read_text())
    assert answer["app"] == "fixture" and answer["headers"]["Host"] == LB_DOMAIN, answer


def test_renewal_runs_from_certbots_timer(web, lb):
    for node in (web, lb):
        timer = node.host.service("certbot.timer")
        assert timer.is_enabled and timer.is_running, node.name


def test_switch_from_self_signed_to_acme_drops_no_request(web, lb, pebble):
    # Back to the self-signed certificates, and no ACME lineage left: the
    # next converge orders from scratch, as on a site switching over.
    run = converge("-e", json.dumps({"nginx_letsencrypt_domain": "", "loadbalancer_letsencrypt_domain": ""}))
    assert run.returncode == 0, run.stdout[-3000:]
    self_signed = {}
    for node, name in ((web, "forum"), (lb, "forum-lb")):
        with node.host.sudo():
            node.host.check_output(f"certbot delete --non-interactive --cert-name {name}")
        self_signed[node.name] = served_certificate(node)
        try:
            served_certificate(node, pebble_root(pebble))
            raise AssertionError(f"the self-signed certificate of {node.name} passed as pebble's")
        except ssl.SSLCertVerificationError:
            pass

    # A bounded request loop from the controller (new connection each time,
    # so every handshake sees the certificate of the moment) while the
    # converge with ACME runs.
    # The lb's requests cross both switches (its own and the web host's).
    stop = threading.Event()
    results = {web.name: [], lb.name: []}

    def loop(node):
        deadline = time.monotonic() + 300
        seen = results[node.name]
        while not stop.is_set() and time.monotonic() < deadline and len(seen) < 20000:
            try:
                # By address: the self-signed sites do not serve the domains yet.
                seen.append(request(node.address, "/", timeout=5)[0])
            except (OSError, ssl.SSLError) as error:
                seen.append(repr(error))

    workers = [threading.Thread(target=loop, args=(node,)) for node in (web, web, lb, lb)]
    for worker in workers:
        worker.start()
    try:
        run = converge()
    finally:
        time.sleep(1)
        stop.set()
        for worker in workers:
            worker.join()
    assert run.returncode == 0, run.stdout[-3000:]
    for node, domain in ((web, DOMAIN), (lb, LB_DOMAIN)):
        assert recap(run.stdout)[node.name]["changed"] > 0, node.name
        failed = [r for r in results[node.name] if r != 200]
        assert not failed, (node.name, len(failed), failed[:5])
        assert len(results[node.name]) > 50, (node.name, len(results[node.name]))
        assert served_certificate(node, domain=domain) != self_signed[node.name]
        assert served_certificate(node, pebble_root(pebble), domain)


def test_a_forced_renewal_serves_a_new_serial(web, pebble):
    before = served_serial(web, pebble)
    renewal = renew_as_the_timer_does(web)
    assert renewal.rc == 0, renewal.stderr
    assert wait_for_serial(web, pebble, lambda serial: serial != before) != before


def test_a_forced_renewal_serves_a_new_serial_on_the_lb(lb, pebble):
    before = served_serial(lb, pebble, LB_DOMAIN)
    renewal = renew_as_the_timer_does(lb, "forum-lb")
    assert renewal.rc == 0, renewal.stderr
    assert wait_for_serial(lb, pebble, lambda serial: serial != before, domain=LB_DOMAIN) != before


def test_a_renewal_never_reloads_a_broken_configuration(web, pebble):
    before = served_serial(web, pebble)
    with web.host.sudo():
        web.host.check_output("echo 'this is not nginx' >/etc/nginx/conf.d/molecule-broken.conf")
    try:
        renewal = renew_as_the_timer_does(web)
        # certbot renewed the lineage, the hook refused to reload.
        assert "nginx -t failed" in renewal.stderr, renewal.stderr
        time.sleep(2)
        assert served_serial(web, pebble) == before
        assert web.host.service("nginx").is_running
        assert request(web.address, "/", host=DOMAIN)[0] == 200
    finally:
        with web.host.sudo():
            web.host.check_output("rm -f /etc/nginx/conf.d/molecule-broken.conf")
    # Fixed: the hook reloads, and the renewed certificate is served.
    with web.host.sudo():
        web.host.check_output("/etc/letsencrypt/renewal-hooks/deploy/nginx-reload")
    assert wait_for_serial(web, pebble, lambda serial: serial != before) != before


def assert_failed_order_kept_the_site(run, web, pebble, before, vhost_cert_line, cause):
    output = " ".join(run.stdout.split())
    assert run.returncode != 0, output[-3000:]
    assert "certbot got no certificate for" in output, output[-3000:]
    # certbot's own words, quoted after the role's.
    assert cause in output.split("certbot said:")[-1], output[-3000:]
    assert served_serial(web, pebble) == before
    # By address: the failed run's domain replaced DOMAIN in the server names.
    assert request(web.address, "/")[0] == 200
    with web.host.sudo():
        assert web.host.check_output(f"grep -m1 ssl_certificate {VHOST}") == vhost_cert_line
        web.host.check_output("nginx -t -q")


def vhost_certificate_line(web):
    with web.host.sudo():
        line = web.host.check_output(f"grep -m1 ssl_certificate {VHOST}")
    assert LIVE in line
    return line


def test_a_domain_pebble_cannot_validate_fails_the_run_and_keeps_the_certificate(web, pebble):
    before = settled_serial(web, pebble)
    line = vhost_certificate_line(web)
    run = converge("-e", json.dumps({"nginx_letsencrypt_domain": "unknown.acme.test"}), "--limit", "web")
    # pebble cannot resolve the name: the CA's reason, as certbot reports it.
    assert_failed_order_kept_the_site(run, web, pebble, before, line, "Detail:")
    # The right domain again: nothing to order, the names come back.
    run = converge("--limit", "web")
    assert run.returncode == 0, run.stdout[-3000:]
    assert served_serial(web, pebble) == before


def test_pebble_stopped_fails_renewal_and_order_and_keeps_the_certificate(web, lb, pebble):
    before = settled_serial(web, pebble)
    lb_before = settled_serial(lb, pebble, "forum-lb", LB_DOMAIN)
    root = pebble_root(pebble)
    line = vhost_certificate_line(web)
    with lb.host.sudo():
        lb_line = lb.host.check_output(f"grep -m1 ssl_certificate {LB_VHOST}")
    assert LB_LIVE in lb_line
    with pebble.host.sudo():
        pebble.host.check_output("systemctl stop pebble.service")
    try:
        for node, name in ((web, "forum"), (lb, "forum-lb")):
            renewal = renew_as_the_timer_does(node, name)
            assert renewal.rc != 0, node.name
        assert served_certificate(web, root)["serialNumber"] == before
        assert served_certificate(lb, root, LB_DOMAIN)["serialNumber"] == lb_before
        # A new domain on each host: both must order, both fail. One run per
        # host: a play whose every host failed ends the playbook.
        for group, variable, domain in (("web", "nginx_letsencrypt_domain", "other.acme.test"),
                                        ("lb", "loadbalancer_letsencrypt_domain", "other-lb.acme.test")):
            run = converge("-e", json.dumps({variable: domain}), "--limit", group)
            assert run.returncode != 0, run.stdout[-3000:]
            # certbot's own words, quoted after the role's: pebble unreachable.
            assert "acme-pebble" in failure_for(run.stdout, domain).split("certbot said:")[-1], domain
        assert served_certificate(web, root)["serialNumber"] == before
        assert served_certificate(lb, root, LB_DOMAIN)["serialNumber"] == lb_before
        # The lb still proxies to the web host (by address: the failed run's
        # domain replaced LB_DOMAIN in the server names).
        status, _, body = request(lb.address, "/")
        assert status == 200 and json.loads(body)["app"] == "fixture"
        with web.host.sudo():
            assert web.host.check_output(f"grep -m1 ssl_certificate {VHOST}") == line
        with lb.host.sudo():
            assert lb.host.check_output(f"grep -m1 ssl_certificate {LB_VHOST}") == lb_line
            lb.host.check_output("nginx -t -q")
    finally:
        with pebble.host.sudo():
            pebble.host.check_output("systemctl start pebble.service")
    run = converge()
    assert run.returncode == 0, run.stdout[-3000:]
