"""automation: playbook state, timeline, leases, webhook deliveries

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _at(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "playbook_state",
        sa.Column("playbook", sa.String(length=200), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("playbook", name=op.f("pk_playbook_state")),
    )
    op.create_table(
        "playbook_timeline",
        sa.Column("id", _ID, nullable=False),
        sa.Column("playbook", sa.String(length=200), nullable=False),
        _at("at"),
        sa.Column("step", sa.String(length=200), nullable=True),
        sa.Column("rule", sa.String(length=60), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("numbers", sa.JSON(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_playbook_timeline")),
        sa.UniqueConstraint("playbook", "step", name=op.f("uq_playbook_timeline_playbook_step")),
    )
    op.create_index(
        op.f("ix_playbook_timeline_playbook_id"), "playbook_timeline", ["playbook", "id"]
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        _at("expires_at"),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", _ID, nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("playbook", sa.String(length=200), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("format", sa.String(length=20), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _at("next_at"),
        sa.Column("last_error", sa.Text(), nullable=False),
        _at("created_at"),
        _at("sent_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint("event_id", "url", name=op.f("uq_webhook_deliveries_event_id_url")),
    )
    op.create_index(
        op.f("ix_webhook_deliveries_status_next_at"),
        "webhook_deliveries",
        ["status", "next_at"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_webhook_deliveries_status_next_at"), table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_table("leases")
    op.drop_index(op.f("ix_playbook_timeline_playbook_id"), table_name="playbook_timeline")
    op.drop_table("playbook_timeline")
    op.drop_table("playbook_state")
