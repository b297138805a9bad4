"""Identicons drawn from the account id: served as SVG, stable, distinct, inert."""
import xml.etree.ElementTree as ET

from .conftest import create_board, create_user, login
from .test_posts import new_topic

SVG = "{http://www.w3.org/2000/svg}"


def cells(svg: str) -> set[tuple[float, float]]:
    root = ET.fromstring(svg)
    return {(float(r.get("x")), float(r.get("y"))) for r in root.iter(SVG + "rect") if r.get("x")}


def test_an_avatar_is_a_stable_symmetric_svg_distinct_per_account(client):
    first = client.get("/avatar/1.svg")
    assert first.status_code == 200 and first.mimetype == "image/svg+xml"
    assert "max-age=604800" in first.headers["Cache-Control"]
    assert "default-src 'self'" in first.headers["Content-Security-Policy"]
    svg = first.get_data(as_text=True)
    assert client.get("/avatar/1.svg").get_data(as_text=True) == svg
    drawn = cells(svg)
    assert drawn and all((5 - x, y) in drawn for x, y in drawn)  # mirrored left to right
    others = {client.get(f"/avatar/{i}.svg").get_data(as_text=True) for i in range(2, 12)}
    assert len(others) == 10 and svg not in others
    assert "<script" not in svg and "style=" not in svg and "href" not in svg


def test_ids_out_of_range_are_not_found(client):
    assert client.get("/avatar/99999999999999999999.svg").status_code == 404
    assert client.get("/avatar/abc.svg").status_code == 404


def test_posts_and_profiles_show_the_authors_avatar(app, client):
    create_board(app)
    uid = create_user(app)
    login(client)
    topic_id = new_topic(client)
    assert f'<img class="avatar" src="/avatar/{uid}.svg"' in client.get(f"/t/{topic_id}").get_data(as_text=True)
    assert f'src="/avatar/{uid}.svg"' in client.get("/u/alice").get_data(as_text=True)
