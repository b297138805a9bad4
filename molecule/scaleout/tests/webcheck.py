"""One web host's own nginx, asked from the load balancer: the web hosts
admit HTTP(S) from the load balancer only (test_scaleout.py), so a test
that looks at a web host's answers sends its requests from there, to the
web host's private address, with the Host a client would send (the web
host's address). The scripts run with the lb host's python3."""
import base64
import http.client
import json
import shlex
from functools import lru_cache

import testlib  # noqa: E402  (the scenario conftest put it on sys.path)

# One GET (redirects not followed); prints JSON: status, headers in the
# order and number received, body (base64), or the error when the server
# closed the connection without an answer.
REQUEST_SCRIPT = r"""
import base64, http.client, json, ssl, sys
address, port, scheme, path, host, headers = sys.argv[1:7]
if scheme == 'https':
    conn = http.client.HTTPSConnection(address, int(port), timeout=30, context=ssl._create_unverified_context())
else:
    conn = http.client.HTTPConnection(address, int(port), timeout=30)
try:
    conn.request('GET', path, headers={'Host': host, **json.loads(headers)})
    answer = conn.getresponse()
    print(json.dumps({'status': answer.status, 'headers': answer.getheaders(),
                      'body': base64.b64encode(answer.read()).decode()}))
except (http.client.RemoteDisconnected, ConnectionResetError) as error:
    print(json.dumps({'error': type(error).__name__}))
"""

# The application protocol the server picks by ALPN from argv[3:].
ALPN_SCRIPT = r"""
import socket, ssl, sys
context = ssl._create_unverified_context()
context.set_alpn_protocols(sys.argv[3:])
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10) as raw:
    with context.wrap_socket(raw, server_hostname=sys.argv[1]) as tls:
        print(tls.selected_alpn_protocol())
"""

# Sends argv[3] (base64) as is over plain TCP; prints the first answer
# bytes (base64).
RAW_SCRIPT = r"""
import base64, socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10) as conn:
    conn.sendall(base64.b64decode(sys.argv[3]))
    print(base64.b64encode(conn.recv(1024)).decode())
"""

ERRORS = {"RemoteDisconnected": http.client.RemoteDisconnected, "ConnectionResetError": ConnectionResetError}


@lru_cache(maxsize=1)
def _lb():
    return testlib.nodes("lb")[0]


def _run(script, *args):
    command = f"python3 -c {shlex.quote(script)} " + " ".join(shlex.quote(str(arg)) for arg in args)
    result = _lb().host.run(command)
    assert result.rc == 0, result.stdout + result.stderr
    return result.stdout.strip()


def fields(web, path="/", scheme="https", host=None, headers=None):
    """One GET to `web` from the load balancer: (status, [(lower-cased
    name, value), ...] in the order and number received, body bytes).
    Raises http.client.RemoteDisconnected (or ConnectionResetError) when
    nginx closed the connection without an answer."""
    port = 443 if scheme == "https" else 80
    out = json.loads(_run(REQUEST_SCRIPT, web.vars["private_address"], port, scheme, path,
                          host or web.address, json.dumps(headers or {})))
    if "error" in out:
        raise ERRORS[out["error"]](out["error"])
    return (out["status"], [(name.lower(), value) for name, value in out["headers"]],
            base64.b64decode(out["body"]))


def request(web, path="/", scheme="https", host=None, headers=None):
    """testlib.request, sent to `web` from the load balancer: (status,
    lower-cased headers, body bytes)."""
    status, received, body = fields(web, path, scheme, host, headers)
    return status, dict(received), body


def negotiated_alpn(web, offered=("h2", "http/1.1")):
    """The protocol `web`'s nginx picks by ALPN on port 443."""
    return _run(ALPN_SCRIPT, web.vars["private_address"], 443, *offered)


def raw_exchange(web, port, data):
    """The first bytes `web` answers on `port` to `data` (bytes) sent as is."""
    return base64.b64decode(_run(RAW_SCRIPT, web.vars["private_address"], port,
                                 base64.b64encode(data).decode()))


def served_releases(webs):
    """A read_releases for bench.run: {host: address} -> {host: the release
    its /healthz reports}, asked on each web host itself."""
    by_name = {web.name: web for web in webs}
    script = ("import json, ssl, urllib.request; "
              "print(json.load(urllib.request.urlopen('https://127.0.0.1/healthz', timeout=10, "
              "context=ssl._create_unverified_context()))['release'])")

    def read(addresses):
        return {name: by_name[name].host.check_output(f"python3 -c \"{script}\"") for name in addresses}
    return read
