"""The ACME path of the nginx role against pebble: the certificate served
is issued by pebble's CA (trusted by this test client only), the switch
from self-signed to ACME on a live site drops no request, a forced renewal
serves a new serial, the renewal hook never reloads a broken configuration,
and a failed order (a domain pebble cannot validate, pebble stopped) fails
the run naming certbot's error while the site keeps serving the certificate
it had.

The tests run in file order: the last one restarts pebble, which makes a
new root CA and forgets every account."""
import json
import socket
import ssl
import threading
import time
import urllib.request

from testlib import assert_check_mode_reports_no_change, recap, request, run_playbook, scenario_converge_playbook

DOMAIN = "forum.acme.test"
VHOST = "/etc/nginx/sites-available/forum.conf"
LIVE = "/etc/letsencrypt/live/forum"


def pebble_root(pebble):
    """pebble's current root CA (PEM), from its management port, over TLS
    checked against the certificate prepare.yml made for pebble."""
    context = ssl.create_default_context(cafile=pebble.vars["pebble_tls_certificate_file"])
    with urllib.request.urlopen(f"https://{pebble.address}:15000/roots/0", context=context, timeout=10) as answer:
        return answer.read().decode()


def served_certificate(web, root=None):
    """The certificate the site serves for DOMAIN: the parsed, verified one
    when `root` (PEM) is given (raises ssl.SSLCertVerificationError if it is
    not issued under it), else the DER bytes."""
    if root is None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cadata=root)
    with socket.create_connection((web.address, 443), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=DOMAIN) as tls:
            return tls.getpeercert(binary_form=root is None)


def served_serial(web, pebble):
    return served_certificate(web, pebble_root(pebble))["serialNumber"]


def wait_for_serial(web, pebble, predicate, seconds=20):
    """The served serial once `predicate(serial)` holds (nginx's new workers
    take a moment after a reload), or the last one seen."""
    deadline = time.monotonic() + seconds
    serial = served_serial(web, pebble)
    while not predicate(serial) and time.monotonic() < deadline:
        time.sleep(0.5)
        serial = served_serial(web, pebble)
    return serial


def converge(*extra):
    return run_playbook(scenario_converge_playbook(), *extra)


def renew_as_the_timer_does(web):
    """`certbot renew --force-renewal` on the web host with the environment
    of certbot.service (the unit certbot.timer starts): the CA for pebble's
    HTTPS comes from the role's drop-in, the reload from its deploy hook."""
    with web.host.sudo():
        return web.host.run(
            "env $(systemctl show -p Environment --value certbot.service) "
            "certbot renew --force-renewal --no-random-sleep-on-renew --cert-name forum")


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


def test_renewal_runs_from_certbots_timer(web):
    timer = web.host.service("certbot.timer")
    assert timer.is_enabled and timer.is_running


def test_switch_from_self_signed_to_acme_drops_no_request(web, pebble):
    # Back to the self-signed certificate, and no ACME lineage left: the
    # next converge orders from scratch, as on a site switching over.
    run = converge("-e", json.dumps({"nginx_letsencrypt_domain": ""}))
    assert run.returncode == 0, run.stdout[-3000:]
    with web.host.sudo():
        web.host.check_output("certbot delete --non-interactive --cert-name forum")
    self_signed = served_certificate(web)
    try:
        served_certificate(web, pebble_root(pebble))
        raise AssertionError("the self-signed certificate passed as pebble's")
    except ssl.SSLCertVerificationError:
        pass

    # A bounded request loop from the controller (new connection each time,
    # so every handshake sees the certificate of the moment) while the
    # converge with ACME runs.
    stop = threading.Event()
    results = []

    def loop():
        deadline = time.monotonic() + 300
        while not stop.is_set() and time.monotonic() < deadline and len(results) < 20000:
            try:
                # By address: the self-signed site does not serve DOMAIN yet.
                results.append(request(web.address, "/", timeout=5)[0])
            except (OSError, ssl.SSLError) as error:
                results.append(repr(error))

    workers = [threading.Thread(target=loop) for _ in range(2)]
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
    assert recap(run.stdout)[web.name]["changed"] > 0
    failed = [r for r in results if r != 200]
    assert not failed, (len(failed), failed[:5])
    assert len(results) > 50, len(results)
    assert served_certificate(web) != self_signed
    assert served_certificate(web, pebble_root(pebble))


def test_a_forced_renewal_serves_a_new_serial(web, pebble):
    before = served_serial(web, pebble)
    renewal = renew_as_the_timer_does(web)
    assert renewal.rc == 0, renewal.stderr
    assert wait_for_serial(web, pebble, lambda serial: serial != before) != before


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
    before = served_serial(web, pebble)
    line = vhost_certificate_line(web)
    run = converge("-e", json.dumps({"nginx_letsencrypt_domain": "unknown.acme.test"}))
    # pebble cannot resolve the name: the CA's reason, as certbot reports it.
    assert_failed_order_kept_the_site(run, web, pebble, before, line, "Detail:")
    # The right domain again: nothing to order, the names come back.
    run = converge()
    assert run.returncode == 0, run.stdout[-3000:]
    assert served_serial(web, pebble) == before


def test_pebble_stopped_fails_renewal_and_order_and_keeps_the_certificate(web, pebble):
    before = served_serial(web, pebble)
    root = pebble_root(pebble)
    line = vhost_certificate_line(web)
    with pebble.host.sudo():
        pebble.host.check_output("systemctl stop pebble.service")
    try:
        renewal = renew_as_the_timer_does(web)
        assert renewal.rc != 0
        assert served_certificate(web, root)["serialNumber"] == before
        run = converge("-e", json.dumps({"nginx_letsencrypt_domain": "other.acme.test"}))
        output = " ".join(run.stdout.split())
        assert run.returncode != 0, output[-3000:]
        assert "certbot got no certificate for other.acme.test" in output, output[-3000:]
        assert "acme-pebble" in output.split("certbot said:")[-1], output[-3000:]
        assert served_certificate(web, root)["serialNumber"] == before
        with web.host.sudo():
            assert web.host.check_output(f"grep -m1 ssl_certificate {VHOST}") == line
    finally:
        with pebble.host.sudo():
            pebble.host.check_output("systemctl start pebble.service")
    run = converge()
    assert run.returncode == 0, run.stdout[-3000:]
