"""Upload sessions of the customer import: the uploaded file and its metadata wait between the
steps (map, preview, import) in MEDIA_ROOT/imports/<token>/, readable by their owner only, and are
deleted after the import or CUSTOMER_IMPORT_SESSION_HOURS (24)."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .engine import Policy
from .limits import MB, can_import, file_error, max_bytes, session_hours
from .mapping import auto_mapping, validate_mapping
from .reading import ROWS_SUFFIX, inspect_file

# Upload sessions ---------------------------------------------------------------------------------

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


def imports_root() -> Path:
    return Path(settings.MEDIA_ROOT) / ImportSession.folder


@dataclass
class UploadSession:
    """An uploaded file waiting between the steps of an import wizard, in
    MEDIA_ROOT/<folder>/<token>/ (the customer import's and the order import's)."""

    token: str
    meta: dict

    folder = "imports"

    @classmethod
    def root(cls) -> Path:
        return Path(settings.MEDIA_ROOT) / cls.folder

    @property
    def directory(self) -> Path:
        return self.root() / self.token

    @property
    def path(self) -> Path:
        """The uploaded file."""
        return self.directory / self.meta["stored_name"]

    @property
    def rows_path(self) -> Path:
        """The rows of the upload as read at upload (see ``reading.inspect_file``)."""
        return self.directory / f"rows{ROWS_SUFFIX}"

    @property
    def table_path(self) -> Path:
        """What the preview and the import read: the rows file (uploads from before it existed:
        the upload itself)."""
        return self.rows_path if self.rows_path.exists() else self.path

    @property
    def headers(self) -> list[str]:
        return self.meta["headers"]

    @property
    def mapping(self) -> list[str]:
        return self.meta["mapping"]

    @property
    def row_count(self) -> int:
        return self.meta["rows"]

    @property
    def filename(self) -> str:
        return self.meta["filename"]

    @property
    def columns(self) -> list[tuple[str, str]]:
        return list(zip(self.headers, self.mapping, strict=True))

    def save(self) -> None:
        meta_path = self.directory / "meta.json"
        tmp = meta_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.meta, ensure_ascii=False), encoding="utf-8")
        os.chmod(tmp, 0o600)
        tmp.replace(meta_path)

    def delete(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class ImportSession(UploadSession):
    """A customer import's upload, in MEDIA_ROOT/imports/<token>/."""

    @property
    def policy(self) -> str:
        return self.meta["policy"]


def _write_upload(uploaded, target: Path) -> None:
    limit = max_bytes()
    written = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        for chunk in uploaded.chunks():
            written += len(chunk)
            if written > limit:
                raise file_error(
                    _("The file is larger than %(max)d MB. Split it into smaller files."),
                    "too_big",
                    max=limit // MB,
                )
            out.write(chunk)


def upload_store(session_class, *, actor, uploaded, meta: dict, max_rows: int | None = None):
    """Keep an upload in a new session of ``session_class``, read it once (its rows go to the rows
    file) and return the session with ``headers`` and ``rows`` in its meta, not saved yet;
    ImportFileError (nothing kept) when it cannot be imported."""
    name = os.path.basename(str(getattr(uploaded, "name", "") or "upload"))[:200]
    extension = Path(name).suffix.lower()
    extension = extension if extension in (".xlsx", ".csv", ".txt", ".xls") else ".bin"
    token = secrets.token_urlsafe(24)
    session = session_class(
        token=token,
        meta={
            "owner": actor.pk,
            "filename": name,
            "stored_name": f"upload{extension}",
            "created": timezone.now().isoformat(),
            **meta,
        },
    )
    session.directory.mkdir(parents=True, mode=0o700)
    try:
        _write_upload(uploaded, session.path)
        headers, rows = inspect_file(session.path, name, rows_file=session.rows_path, limit=max_rows)
    except Exception:
        session.delete()
        raise
    session.meta.update(headers=headers, rows=rows)
    return session


def upload_session_get(session_class, *, user, token: str, hours: int):
    """The user's own upload; Http404 for a missing, expired (older than ``hours``) or someone
    else's token."""
    if not isinstance(token, str) or not TOKEN_RE.match(token):
        raise Http404
    meta_path = session_class.root() / token / "meta.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise Http404 from exc
    if meta.get("owner") != user.pk or "headers" not in meta:
        raise Http404
    created = datetime.fromisoformat(meta["created"])
    if timezone.now() - created > timedelta(hours=hours):
        raise Http404
    return session_class(token=token, meta=meta)


def upload_sessions_cleanup(session_class, *, hours: int) -> int:
    """Delete the uploads of ``session_class`` older than ``hours``; returns how many."""
    root = session_class.root()
    if not root.is_dir():
        return 0
    cutoff = time.time() - hours * 3600
    removed = 0
    for entry in root.iterdir():
        try:
            if entry.is_dir() and entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
        except OSError:
            continue
    return removed


def import_session_create(*, actor, uploaded, policy: str = Policy.SKIP, template=None) -> ImportSession:
    """Store an upload, inspect it and propose a mapping; ImportFileError if it cannot be imported."""
    if not can_import(actor):
        raise ValidationError(gettext("You are not allowed to import customers."), code="forbidden")
    import_sessions_cleanup()
    session = upload_store(
        ImportSession,
        actor=actor,
        uploaded=uploaded,
        meta={
            "policy": policy if policy in (Policy.UPDATE, Policy.SKIP) else Policy.SKIP,
            "template": template.pk if template else None,
        },
    )
    headers = session.headers
    session.meta["mapping"] = auto_mapping(headers, template.mapping if template else None)
    session.save()
    return session


def import_session_get(*, user, token: str) -> ImportSession:
    """The user's own upload; Http404 for a missing, expired or someone else's token."""
    return upload_session_get(ImportSession, user=user, token=token, hours=session_hours())


def import_session_set_mapping(
    *, session: ImportSession, mapping: list[str], policy: str | None = None
) -> None:
    validate_mapping(mapping)
    session.meta["mapping"] = list(mapping)
    if policy in (Policy.UPDATE, Policy.SKIP):
        session.meta["policy"] = policy
    session.save()


def import_sessions_cleanup(*, max_age_hours: int | None = None) -> int:
    """Delete uploads older than CUSTOMER_IMPORT_SESSION_HOURS (24); returns how many."""
    hours = max_age_hours if max_age_hours is not None else session_hours()
    return upload_sessions_cleanup(ImportSession, hours=hours)
