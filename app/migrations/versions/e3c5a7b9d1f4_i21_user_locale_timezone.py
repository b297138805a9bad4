"""users.locale and users.timezone: each member's language and time zone

Revision ID: e3c5a7b9d1f4
Revises: d2b4c6e8f0a1
Create Date: 2026-12-07 00:50:00

Both NULL for every existing account: the browser's language (Accept-Language)
and the forum's default time zone, as before this revision (English, UTC).
"""
from alembic import op
import sqlalchemy as sa

revision = "e3c5a7b9d1f4"
down_revision = "d2b4c6e8f0a1"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locale", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("timezone")
        batch_op.drop_column("locale")
