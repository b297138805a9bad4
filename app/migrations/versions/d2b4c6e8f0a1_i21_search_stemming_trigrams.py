"""Search: English stemming and trigram substring indexes (PostgreSQL only)

Revision ID: d2b4c6e8f0a1
Revises: d1a3b5c7e9f2
Create Date: 2026-12-03 14:20:00

The expressions must match forum.search: to_tsvector('english', <column>) for
full-text search with stemming ("deploy" finds "Deploying"), and pg_trgm GIN
indexes (gin_trgm_ops) for ILIKE '%...%' substrings, which is what finds CJK
words inside a sentence. The 'simple' full-text indexes are replaced.

pg_trgm is a trusted extension (PostgreSQL 13+): the database owner, which the
app's role is (roles/postgresql), may create it without being superuser. When it
is already there (created by an administrator) the migration does not touch it,
and the downgrade leaves it in place: other objects may use it.
"""
from alembic import op

revision = "d2b4c6e8f0a1"
down_revision = "d1a3b5c7e9f2"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_posts_body_en_fts", "posts", "gin (to_tsvector('english', body))"),
    ("ix_topics_title_en_fts", "topics", "gin (to_tsvector('english', title))"),
    ("ix_posts_body_trgm", "posts", "gin (body gin_trgm_ops)"),
    ("ix_topics_title_trgm", "topics", "gin (title gin_trgm_ops)"),
)


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade():
    if not _is_postgresql():
        return
    bind = op.get_bind()
    if not bind.exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'").scalar():
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("DROP INDEX IF EXISTS ix_posts_body_fts")
    op.execute("DROP INDEX IF EXISTS ix_topics_title_fts")
    for name, table, using in INDEXES:
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING {using}")


def downgrade():
    if not _is_postgresql():
        return
    for name, _table, _using in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    op.execute("CREATE INDEX IF NOT EXISTS ix_posts_body_fts ON posts USING gin (to_tsvector('simple', body))")
    op.execute("CREATE INDEX IF NOT EXISTS ix_topics_title_fts ON topics USING gin (to_tsvector('simple', title))")
