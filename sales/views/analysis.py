"""Views of the analysis area: the overview (last run, segments, runs, auto-tag rules), running the
analysis on demand, and the auto-tag rule screens. `urlpatterns` is included by sales/urls.py."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from ..forms.analysis import AutoTagRuleForm
from ..models import AutoTagRule
from ..selectors import analysis as selectors
from ..services import analysis as services
from ..services import analysis_rules as rules


def _errors_to_form(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


@login_required
@permission_required("sales.view_analysisrun", raise_exception=True)
def analysis_overview(request):
    return render(request, "sales/analysis/overview.html", selectors.overview_context(user=request.user))


@require_POST
@login_required
@permission_required("sales.run_analysis", raise_exception=True)
def analysis_run(request):
    try:
        job = services.analysis_start(actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("sales:analysis")
    messages.success(request, _("The customer analysis has started. You will be notified when it finishes."))
    return redirect(job.get_absolute_url())


@require_http_methods(["GET", "POST"])
@login_required
@permission_required("sales.add_autotagrule", raise_exception=True)
def rule_create(request):
    form = AutoTagRuleForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            rule = rules.auto_tag_rule_create(actor=request.user, **form.service_values())
        except ValidationError as exc:
            _errors_to_form(form, exc)
        else:
            messages.success(
                request,
                _("Rule %(name)s saved. It tags customers at the next analysis, or now with Apply.")
                % {"name": rule.name},
            )
            return redirect("sales:analysis")
    return render(request, "sales/analysis/rule_form.html", {"form": form, "rule": None})


@require_http_methods(["GET", "POST"])
@login_required
@permission_required("sales.change_autotagrule", raise_exception=True)
def rule_edit(request, pk: int):
    rule = get_object_or_404(AutoTagRule, pk=pk)
    form = AutoTagRuleForm(request.POST or None, instance=rule)
    if request.method == "POST" and form.is_valid():
        try:
            rules.auto_tag_rule_update(actor=request.user, rule=rule, **form.service_values())
        except ValidationError as exc:
            _errors_to_form(form, exc)
        else:
            messages.success(request, _("Rule %(name)s saved.") % {"name": form.cleaned_data["name"]})
            return redirect("sales:analysis")
    return render(request, "sales/analysis/rule_form.html", {"form": form, "rule": rule})


@require_http_methods(["GET", "POST"])
@login_required
@permission_required("sales.delete_autotagrule", raise_exception=True)
def rule_delete(request, pk: int):
    rule = get_object_or_404(AutoTagRule.objects.select_related("tag"), pk=pk)
    if request.method == "POST":
        rules.auto_tag_rule_delete(actor=request.user, rule=rule)
        messages.success(request, _("Rule %(name)s deleted.") % {"name": rule.name})
        return redirect("sales:analysis")
    return render(request, "sales/analysis/rule_confirm_delete.html", {"rule": rule})


@require_POST
@login_required
@permission_required(rules.APPLY_PERMISSION, raise_exception=True)
def rule_apply(request, pk: int):
    """Start applying the rule as a background job and open the job's page (progress, result)."""
    rule = get_object_or_404(AutoTagRule, pk=pk)
    try:
        job = rules.auto_tag_rule_apply_start(actor=request.user, rule=rule)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("sales:analysis")
    job.refresh_from_db()  # with no broker the job already ran
    if job.status == job.Status.SUCCEEDED:
        messages.success(request, job.message)
    elif job.is_active:
        messages.info(
            request, _("The rule is being applied in the background. You will be notified when it finishes.")
        )
    return redirect(job)


urlpatterns: list = [
    path("analysis/", analysis_overview, name="analysis"),
    path("analysis/run/", analysis_run, name="analysis-run"),
    path("analysis/rules/new/", rule_create, name="autotag-rule-create"),
    path("analysis/rules/<int:pk>/edit/", rule_edit, name="autotag-rule-edit"),
    path("analysis/rules/<int:pk>/delete/", rule_delete, name="autotag-rule-delete"),
    path("analysis/rules/<int:pk>/apply/", rule_apply, name="autotag-rule-apply"),
]
