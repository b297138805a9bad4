"""Soft delete of topics and posts, and the moderation log

Revision ID: c6f8d0e2a4b3
Revises: b5e7c9d1f3a2
Create Date: 2026-12-03 10:10:00

The board listing index gains is_deleted right after board_id, so that
"WHERE board_id = ? AND is_deleted = false ORDER BY is_pinned DESC,
last_post_at DESC" still walks it in order on both backends.
"""
from alembic import op
import sqlalchemy as sa

revision = "c6f8d0e2a4b3"
down_revision = "b5e7c9d1f3a2"
branch_labels = None
depends_on = None


def upgrade():
    for table in ("topics", "posts"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("is_deleted", sa.Boolean(), server_default=sa.false(), nullable=False))
            batch_op.add_column(sa.Column("deleted_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("topics", schema=None) as batch_op:
        batch_op.drop_index("ix_topics_board_listing")
        batch_op.create_index(
            "ix_topics_board_listing", ["board_id", "is_deleted", "is_pinned", "last_post_at", "id"], unique=False
        )

    op.create_table(
        "moderation_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=30), nullable=False),
        sa.Column("target_type", sa.String(length=20), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("target_label", sa.String(length=200), server_default="", nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], name=op.f("fk_moderation_log_actor_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moderation_log")),
    )
    with op.batch_alter_table("moderation_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_moderation_log_actor_id"), ["actor_id"], unique=False)


def downgrade():
    with op.batch_alter_table("moderation_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_moderation_log_actor_id"))
    op.drop_table("moderation_log")
    # Deleted rows would come back to life without the flag: purge them first.
    op.execute("DELETE FROM posts WHERE is_deleted OR topic_id IN (SELECT id FROM topics WHERE is_deleted)")
    op.execute("DELETE FROM topics WHERE is_deleted")
    with op.batch_alter_table("topics", schema=None) as batch_op:
        batch_op.drop_index("ix_topics_board_listing")
        batch_op.create_index("ix_topics_board_listing", ["board_id", "is_pinned", "last_post_at", "id"], unique=False)
    for table in ("posts", "topics"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("deleted_at")
            batch_op.drop_column("is_deleted")
