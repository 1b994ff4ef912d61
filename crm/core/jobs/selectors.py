"""Reads on background jobs, scoped to the user: their own jobs; every job for administrators."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext_lazy as _

from .models import Job

VIEW_ALL_PERMISSION = "jobs.view_all_jobs"


def can_view_all_jobs(user) -> bool:
    return user.is_superuser or user.has_perm(VIEW_ALL_PERMISSION)


def job_list_for_user(*, user) -> QuerySet[Job]:
    if not user.is_authenticated or not user.is_active:
        return Job.objects.none()
    qs = Job.objects.select_related("owner").order_by("-created_at")
    return qs if can_view_all_jobs(user) else qs.filter(owner=user)


def job_get_for_user(*, user, pk) -> Job:
    """One job the user may see; missing and someone else's both raise Http404."""
    try:
        return job_list_for_user(user=user).get(pk=pk)
    except (Job.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404(_("No such job.")) from exc
