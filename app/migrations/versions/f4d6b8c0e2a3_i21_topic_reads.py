"""topic_reads and users.read_all_at: unread markers

Revision ID: f4d6b8c0e2a3
Revises: e3c5a7b9d1f2
Create Date: 2026-12-07 01:15:00
"""
from alembic import op
import sqlalchemy as sa

revision = "f4d6b8c0e2a3"
down_revision = "e3c5a7b9d1f2"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("read_all_at", sa.DateTime(), nullable=True))
    op.create_table(
        "topic_reads",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("topic_id", sa.Integer(), nullable=False),
        sa.Column("last_post_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["topic_id"], ["topics.id"], name=op.f("fk_topic_reads_topic_id_topics"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_topic_reads_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "topic_id", name=op.f("pk_topic_reads")),
    )


def downgrade():
    op.drop_table("topic_reads")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("read_all_at")
