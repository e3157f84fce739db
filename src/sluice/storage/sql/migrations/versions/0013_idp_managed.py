"""Teams made from an identity provider's groups, and what each identity's groups granted.

``teams.managed_by``: the IdP a team was made from (null: made by hand).
``identities.grants``: the roles and team memberships the IdP's groups granted at the last
sign-in (``{"admin": bool, "org_admin": [org ids], "teams": [team ids]}``), so that the next
sign-in takes back exactly those when the groups change, and never a grant made by hand.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("teams") as batch:
        batch.add_column(sa.Column("managed_by", sa.String(64), nullable=True))
    with op.batch_alter_table("identities") as batch:
        batch.add_column(sa.Column("grants", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("identities") as batch:
        batch.drop_column("grants")
    with op.batch_alter_table("teams") as batch:
        batch.drop_column("managed_by")
