"""users.email_verified_at: optional e-mail verification

Revision ID: a5e7c9b1d3f4
Revises: f4d6b8c0e2a3
Create Date: 2026-12-07 01:45:00

Accounts that exist already count as verified (turning verification on must
not stop them posting).
"""
from alembic import op
import sqlalchemy as sa

revision = "a5e7c9b1d3f4"
down_revision = "f4d6b8c0e2a3"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_verified_at", sa.DateTime(), nullable=True))
    users = sa.table("users", sa.column("created_at", sa.DateTime), sa.column("email_verified_at", sa.DateTime))
    op.execute(users.update().values(email_verified_at=users.c.created_at))


def downgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("email_verified_at")
