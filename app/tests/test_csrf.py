from .conftest import create_user, extract_csrf, make_app


def test_post_without_csrf_token_is_rejected(tmp_path):
    app = make_app(tmp_path, WTF_CSRF_ENABLED=True)
    create_user(app)
    client = app.test_client()
    resp = client.post("/login", data={"username": "alice", "password": "correct horse"})
    assert resp.status_code == 400
    assert b"security token" in resp.data

    token = extract_csrf(client.get("/login").get_data(as_text=True))
    resp = client.post("/login", data={"username": "alice", "password": "correct horse", "csrf_token": token})
    assert resp.status_code == 302

    # Logged in, but logout without a token is still refused.
    assert client.post("/logout").status_code == 400
