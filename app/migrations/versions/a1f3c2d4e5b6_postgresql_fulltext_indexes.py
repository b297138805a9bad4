"""PostgreSQL full-text search indexes (no-op on other databases)

Revision ID: a1f3c2d4e5b6
Revises: 768743c88bf0
Create Date: 2026-11-21 06:00:00

The expressions must match forum.boards._text_match():
to_tsvector('simple', <column>).
"""
from alembic import op

revision = "a1f3c2d4e5b6"
down_revision = "768743c88bf0"
branch_labels = None
depends_on = None


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade():
    if not _is_postgresql():
        return
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_posts_body_fts ON posts "
        "USING gin (to_tsvector('simple', body))"
    )
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_topics_title_fts ON topics "
        "USING gin (to_tsvector('simple', title))"
    )


def downgrade():
    if not _is_postgresql():
        return
    op.execute("DROP INDEX IF EXISTS ix_topics_title_fts")
    op.execute("DROP INDEX IF EXISTS ix_posts_body_fts")
