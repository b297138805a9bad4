"""users.username_skeleton: look-alike usernames cannot both exist

Revision ID: d1a3b5c7e9f2
Revises: c6f8d0e2a4b3
Create Date: 2026-12-03 14:10:00

Existing accounts get forum.identity.skeleton(username), oldest first; an account
whose skeleton an older account already has keeps NULL (both keep working, the
unique constraint allows many NULLs, and a new look-alike is still refused).
"""
from alembic import op
import sqlalchemy as sa

revision = "d1a3b5c7e9f2"
down_revision = "c6f8d0e2a4b3"
branch_labels = None
depends_on = None


def upgrade():
    from forum.identity import skeleton

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("username_skeleton", sa.String(length=120), nullable=True))

    bind = op.get_bind()
    users = sa.table("users", sa.column("id", sa.Integer), sa.column("username", sa.String),
                     sa.column("username_skeleton", sa.String))
    taken = set()
    for user_id, username in bind.execute(sa.select(users.c.id, users.c.username).order_by(users.c.id)):
        key = skeleton(username)
        if key in taken:
            continue
        taken.add(key)
        bind.execute(users.update().where(users.c.id == user_id).values(username_skeleton=key))

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f("uq_users_username_skeleton"), ["username_skeleton"])


def downgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_users_username_skeleton"), type_="unique")
        batch_op.drop_column("username_skeleton")
