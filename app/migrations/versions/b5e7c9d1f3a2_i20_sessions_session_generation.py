"""users.session_generation: revocable sessions

Revision ID: b5e7c9d1f3a2
Revises: a1f3c2d4e5b6
Create Date: 2026-12-03 10:00:00

Session and remember-me cookies carry "<user id>:<generation>"; bumping the
generation revokes them. Cookies issued before this revision carry a bare id and
are refused: everybody logs in again once.
"""
from alembic import op
import sqlalchemy as sa

revision = "b5e7c9d1f3a2"
down_revision = "a1f3c2d4e5b6"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("session_generation", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("session_generation")
