"""cameras: live stream URLs (camera agent), health (offline/online alerts) and the stream's video format

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('cameras') as batch:
        batch.add_column(sa.Column('stream_url', sa.String(length=2048), nullable=True))
        batch.add_column(sa.Column('substream_url', sa.String(length=2048), nullable=True))
        batch.add_column(sa.Column('offline_since', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('offline_alerted', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column('video_width', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('video_height', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('video_fps', sa.Float(), nullable=True))
        batch.add_column(sa.Column('video_bitrate', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('cameras') as batch:
        for name in ('video_bitrate', 'video_fps', 'video_height', 'video_width', 'offline_alerted',
                     'offline_since', 'substream_url', 'stream_url'):
            batch.drop_column(name)
