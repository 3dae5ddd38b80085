"""Saving a camera's row and its bucket settings (``cloud.camera_settings``) as one change.

The database and the bucket share no transaction, so the order makes it as close to atomic as it gets:
the bucket object is written inside the database transaction, after its flush and before its commit.
A refused bucket write raises out of the transaction, which rolls back: nothing saved. A commit that fails
after the bucket write puts the previous settings back: nothing saved either (unless the bucket fails
again in that moment, which is logged).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from cloud.camera_settings import CameraSettings, load_settings, save_settings

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

SaveSettings = Callable[[str, CameraSettings], None]


class SettingsNotSaved(Exception):
    """The bucket refused a camera's settings; the surrounding database transaction is rolled back."""

    def __init__(self, slug: str, cause: BaseException) -> None:
        super().__init__(f"could not store camera {slug}'s settings in the bucket: {cause}")
        self.slug = slug


@contextmanager
def camera_transaction(svc: Services) -> Iterator[tuple[Session, SaveSettings]]:
    """``svc.session()`` plus ``save(slug, settings)``: call it after ``db.flush()``, just before the commit.

    ``save`` raises :class:`SettingsNotSaved` when the bucket refuses (the transaction then rolls back);
    settings it wrote are restored if the transaction fails to commit.
    """
    written: list[tuple[str, CameraSettings]] = []

    def save(slug: str, settings: CameraSettings) -> None:
        try:
            previous = load_settings(svc.bucket, slug)
            save_settings(svc.bucket, slug, settings)
        except Exception as exc:  # noqa: BLE001 - any bucket (folder, S3) failure means: not saved
            log.exception("camera %s: storing its settings failed", slug)
            raise SettingsNotSaved(slug, exc) from exc
        written.append((slug, previous))

    try:
        with svc.session() as db:
            yield db, save
    except BaseException:
        for slug, previous in reversed(written):
            try:
                save_settings(svc.bucket, slug, previous)
            except Exception:  # noqa: BLE001 - the original failure is the one to raise
                log.exception("camera %s: the database change failed and its previous settings could not "
                              "be put back in the bucket", slug)
        raise
