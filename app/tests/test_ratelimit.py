from werkzeug.middleware.proxy_fix import ProxyFix

from .conftest import make_app


def test_login_is_rate_limited_and_healthz_is_exempt(tmp_path):
    app = make_app(tmp_path, RATELIMIT_ENABLED=True, FORUM_AUTH_RATE_LIMIT="3 per minute")
    client = app.test_client()
    headers = {"X-Forwarded-For": "203.0.113.7"}
    codes = [
        client.post("/login", data={"username": "x", "password": "y"}, headers=headers).status_code
        for _ in range(4)
    ]
    assert codes[:3] == [401, 401, 401]
    assert codes[3] == 429
    assert b"Too many requests" in client.post(
        "/login", data={"username": "x", "password": "y"}, headers=headers
    ).data
    # GET of the form is not limited, nor is /healthz.
    assert client.get("/login", headers=headers).status_code == 200
    for _ in range(10):
        assert client.get("/healthz", headers=headers).status_code == 200
    # ProxyFix: another client address (as set by nginx) has its own bucket.
    other = client.post("/login", data={"username": "x", "password": "y"},
                        headers={"X-Forwarded-For": "198.51.100.9"})
    assert other.status_code == 401


def test_registration_is_rate_limited(tmp_path):
    app = make_app(tmp_path, RATELIMIT_ENABLED=True, FORUM_AUTH_RATE_LIMIT="2 per minute")
    client = app.test_client()
    codes = [client.post("/register", data={}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_proxy_fix_configured(app):
    assert isinstance(app.wsgi_app, ProxyFix)
    assert (app.wsgi_app.x_for, app.wsgi_app.x_proto, app.wsgi_app.x_host) == (1, 1, 1)
