"""admin sessions kept on the server (logout revokes) and login attempts shared by every process

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'admin_sessions',
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['admin_accounts.id'],
                                name=op.f('fk_admin_sessions_account_id_admin_accounts'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_admin_sessions')),
    )
    op.create_index(op.f('ix_admin_sessions_account_id'), 'admin_sessions', ['account_id'])
    op.create_index(op.f('ix_admin_sessions_expires_at'), 'admin_sessions', ['expires_at'])
    op.create_table(
        'login_attempts',
        sa.Column('address', sa.String(length=64), nullable=False),
        sa.Column('window_start', sa.DateTime(), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('address', name=op.f('pk_login_attempts')),
    )
    op.create_index(op.f('ix_login_attempts_window_start'), 'login_attempts', ['window_start'])


def downgrade() -> None:
    op.drop_index(op.f('ix_login_attempts_window_start'), table_name='login_attempts')
    op.drop_table('login_attempts')
    op.drop_index(op.f('ix_admin_sessions_expires_at'), table_name='admin_sessions')
    op.drop_index(op.f('ix_admin_sessions_account_id'), table_name='admin_sessions')
    op.drop_table('admin_sessions')
