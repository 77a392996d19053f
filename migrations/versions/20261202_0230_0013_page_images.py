"""page_images: rendered pages of stored PDFs, stored encrypted like the documents

Why: pages were rendered when a vendor first scrolled to them (116 ms a page, a 50-page PDF in
6 s) and every image request read and decrypted the whole revision first. A worker now renders
them at upload; a request reads only the image.

Revision ID: 0013_page_images
Revises: 0012_contract_approved_status
Create Date: 2026-12-02 01:44:17.038150
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import portal.types

revision = '0013_page_images'
down_revision = '0012_contract_approved_status'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('page_images',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('page_index', sa.Integer(), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('storage_key', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('created_at', portal.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_page_images')),
    sa.UniqueConstraint('sha256', 'page_index', 'width', name=op.f('uq_page_images_sha256'))
    )


def downgrade() -> None:
    op.drop_table('page_images')
