from forum.extensions import db
from forum.models import Board, Post, Topic, User


def test_ensure_board_is_idempotent(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["forum", "ensure-board", "General Chat", "--description", "Talk here"])
    assert result.exit_code == 0, result.output
    assert result.output == "created\n"
    result = runner.invoke(args=["forum", "ensure-board", "General Chat", "--description", "Talk here"])
    assert result.exit_code == 0, result.output
    assert result.output == "exists\n"
    result = runner.invoke(args=["forum", "ensure-board", "Announcements", "--description", "News", "--slug", "news"])
    assert result.output == "created\n"
    with app.app_context():
        slugs = db.session.scalars(db.select(Board.slug).order_by(Board.id)).all()
        assert slugs == ["general-chat", "news"]


def test_create_admin_reads_password_from_env(app, monkeypatch):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["forum", "create-admin", "root", "--email", "root@example.org"])
    assert result.exit_code != 0
    assert "FORUM_ADMIN_PASSWORD" in result.output

    monkeypatch.setenv("FORUM_ADMIN_PASSWORD", "a-long-admin-password")
    result = runner.invoke(args=["forum", "create-admin", "root", "--email", "root@example.org"])
    assert result.exit_code == 0, result.output
    assert result.output == "created\n"
    result = runner.invoke(args=["forum", "create-admin", "root", "--email", "root@example.org"])
    assert result.output == "exists\n"
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.username == "root"))
        assert user.role == "admin"
        assert user.check_password("a-long-admin-password")


def test_demo_data_and_counters(app):
    runner = app.test_cli_runner()
    runner.invoke(args=["forum", "ensure-board", "One"])
    runner.invoke(args=["forum", "ensure-board", "Two"])
    result = runner.invoke(args=["forum", "demo-data", "--topics", "30", "--replies", "4"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Topic.id))) == 30
        assert db.session.scalar(db.select(db.func.count(Post.id))) == 150
        boards = db.session.scalars(db.select(Board)).all()
        assert sum(b.topic_count for b in boards) == 30
        assert sum(b.post_count for b in boards) == 150
        for b in boards:
            assert b.last_post_id is not None
        topic = db.session.scalars(db.select(Topic)).first()
        assert topic.reply_count == 4
        assert topic.last_post_id == db.session.scalar(
            db.select(db.func.max(Post.id)).where(Post.topic_id == topic.id)
        )
