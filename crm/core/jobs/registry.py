"""The registry of job kinds: each app registers the kinds of background job it offers.

From an AppConfig.ready()::

    from crm.core.jobs.registry import register_job_kind
    register_job_kind("customers.import", _("Customer import"), "customers.tasks.import_customers")

``task`` is a Celery task (or its dotted path, imported on first use) taking one argument, the
job id as a string; it should call ``crm.core.jobs.services.run_job(job_id, fn)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.module_loading import import_string


@dataclass(frozen=True)
class JobKind:
    key: str
    label: Any  # a lazy translated string
    task: Any  # a Celery task or its dotted path

    def get_task(self):
        return import_string(self.task) if isinstance(self.task, str) else self.task


_kinds: dict[str, JobKind] = {}


def register_job_kind(key: str, label, task) -> JobKind:
    kind = JobKind(key=key, label=label, task=task)
    _kinds[key] = kind
    return kind


def get_job_kind(key: str) -> JobKind:
    """The registered kind; LookupError if none has that key."""
    try:
        return _kinds[key]
    except KeyError as exc:
        raise LookupError(f"Unknown job kind {key!r}") from exc


def job_kinds() -> dict[str, JobKind]:
    return dict(_kinds)


def job_kind_label(key: str):
    kind = _kinds.get(key)
    return kind.label if kind else key
