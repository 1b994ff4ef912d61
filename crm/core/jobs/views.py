from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django.views.generic import DetailView, ListView

from . import selectors, services
from .exports import USERS_EXPORT, can_export_users


class JobListView(ListView):
    template_name = "jobs/job_list.html"
    context_object_name = "jobs"
    paginate_by = 25

    def get_queryset(self):
        return selectors.job_list_for_user(user=self.request.user)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["can_export_users"] = can_export_users(self.request.user)
        context["show_owner"] = selectors.can_view_all_jobs(self.request.user)
        return context


class JobDetailView(DetailView):
    template_name = "jobs/job_detail.html"
    context_object_name = "job"

    def get_object(self, queryset=None):
        return selectors.job_get_for_user(user=self.request.user, pk=self.kwargs["pk"])


@never_cache
@require_GET
def job_status(request, pk):
    """The status fragment the job page polls with htmx."""
    job = selectors.job_get_for_user(user=request.user, pk=pk)
    return render(request, "jobs/partials/_status.html", {"job": job})


@require_GET
def job_download(request, pk):
    job = selectors.job_get_for_user(user=request.user, pk=pk)
    if not job.has_result:
        raise Http404(_("This job has no file to download."))
    try:
        handle = job.result_file.open("rb")
    except FileNotFoundError as exc:
        raise Http404(_("The file of this job no longer exists.")) from exc
    return FileResponse(handle, as_attachment=True, filename=job.result_name or job.result_file.name)


@require_POST
def job_cancel(request, pk):
    job = selectors.job_get_for_user(user=request.user, pk=pk)
    if services.job_cancel(job=job, actor=request.user):
        messages.success(request, _("The job was cancelled."))
    else:
        messages.info(request, _("The job had already finished."))
    return redirect(job)


@require_POST
def users_export_start(request):
    if not can_export_users(request.user):
        raise PermissionDenied
    job = services.job_create(kind=USERS_EXPORT, owner=request.user, params={})
    return redirect(job)
