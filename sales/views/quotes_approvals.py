"""Views of approvals (R5.2.1): the approver's list (made for a phone: cards with the figures that
matter and the two buttons), one request with its document's lines, the decision, and the settings
(per-role discount limits and rules) for whoever may change them."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from sales.forms.quotes_approvals import ApprovalRuleForm, DecisionForm, DiscountLimitsForm
from sales.models import ApprovalRule
from sales.selectors import quotes_approvals as selectors
from sales.services import approvals as services

RULES_VIEW = "sales.view_approvalrule"
RULES_CHANGE = services.RULES_PERMISSION


def _require(user, permission: str) -> None:
    if not user.has_perm(permission):
        raise PermissionDenied


def _can_open_list(user) -> bool:
    return user.has_perm(services.APPROVE_PERMISSION) or user.has_perm("sales.view_approvalrequest")


@require_GET
def approval_list(request):
    user = request.user
    if not _can_open_list(user):
        raise PermissionDenied
    default_tab = "inbox" if user.has_perm(services.APPROVE_PERMISSION) else "mine"
    tab = request.GET.get("tab", default_tab)
    if tab not in selectors.TABS:
        tab = default_tab
    queryset = selectors.approval_list_for_user(user=user, tab=tab, filters=request.GET)
    page = Paginator(queryset, selectors.PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page_obj": page,
        "requests": page.object_list,
        "tab": tab,
        "is_inbox": tab == "inbox",
        "tabs": [
            (key, label)
            for key, label in selectors.TABS.items()
            if key != "inbox" or user.has_perm(services.APPROVE_PERMISSION)
        ],
        "inbox_count": selectors.approval_inbox_count(user)
        if user.has_perm(services.APPROVE_PERMISSION)
        else 0,
        "search": request.GET.get("q", ""),
        "decision_form": DecisionForm(),
        "can_see_rules": user.has_perm(RULES_VIEW),
    }
    return render(request, "sales/approvals/approval_list.html", context)


@require_GET
def approval_detail(request, pk):
    user = request.user
    approval = selectors.approval_get_for_user(user=user, pk=pk)
    document = approval.quote if approval.quote_id else approval.order
    context = {
        "approval": approval,
        "document": document,
        "lines": selectors.approval_document_lines(approval),
        "can_decide": services.can_decide(user, approval),
        "decision_form": DecisionForm(),
        "reasons": [services.REASON_LABELS.get(r, r) for r in approval.reasons or []],
    }
    return render(request, "sales/approvals/approval_detail.html", context)


@require_POST
def approval_decide(request, pk):
    user = request.user
    approval = selectors.approval_get_for_user(user=user, pk=pk)
    approve = request.POST.get("decision") == "approve"
    form = DecisionForm(request.POST)
    if request.POST.get("decision") not in ("approve", "reject") or not form.is_valid():
        messages.error(request, _("Choose approve or reject."))
        return redirect("sales:approval-detail", pk=approval.pk)
    try:
        services.approval_decide(
            actor=user, request=approval, approve=approve, comment=form.cleaned_data["comment"]
        )
    except ValidationError as exc:
        messages.error(request, " ".join(str(m) for m in exc.messages))
        return redirect("sales:approval-detail", pk=approval.pk)
    except PermissionDenied:
        messages.error(request, _("You cannot decide this approval request."))
        return redirect("sales:approval-detail", pk=approval.pk)
    document = approval.quote if approval.quote_id else approval.order
    if approve:
        messages.success(request, _("%(number)s is approved.") % {"number": document.number})
    else:
        messages.success(request, _("%(number)s is rejected.") % {"number": document.number})
    next_url = request.POST.get("next", "")
    if next_url == "list":
        return redirect("sales:approval-list")
    return redirect("sales:approval-detail", pk=approval.pk)


# Settings --------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def approval_settings(request):
    user = request.user
    _require(user, RULES_VIEW)
    limits = selectors.approval_limits()
    form = DiscountLimitsForm(request.POST or None, limits=limits)
    can_change = user.has_perm(RULES_CHANGE)
    if request.method == "POST":
        if not can_change:
            raise PermissionDenied
        if form.is_valid():
            try:
                with transaction.atomic():
                    for role, rate in form.limits().items():
                        services.role_discount_limit_set(actor=user, role=role, max_discount_rate=rate)
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, _("The discount limits were saved."))
                return redirect("sales:approval-settings")
    context = {
        "limits_form": form,
        "rules": list(selectors.approval_rules()),
        "can_change": can_change,
    }
    return render(
        request, "sales/approvals/approval_settings.html", context, status=400 if form.errors else 200
    )


def _rule_form_page(request, rule: ApprovalRule | None):
    user = request.user
    _require(user, RULES_CHANGE)
    initial = ApprovalRuleForm.initial_for(rule) if rule else {"priority": 100, "is_active": True}
    form = ApprovalRuleForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            if rule is None:
                services.approval_rule_create(actor=user, **form.cleaned_data)
            else:
                services.approval_rule_update(actor=user, rule=rule, **form.cleaned_data)
        except ValidationError as exc:
            for field, errors in exc.error_dict.items() if hasattr(exc, "error_dict") else [(None, exc)]:
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, _("The approval rule was saved."))
            return redirect("sales:approval-settings")
    status = 400 if form.errors else 200
    return render(
        request, "sales/approvals/approval_rule_form.html", {"form": form, "rule": rule}, status=status
    )


@require_http_methods(["GET", "POST"])
def approval_rule_create(request):
    return _rule_form_page(request, None)


@require_http_methods(["GET", "POST"])
def approval_rule_edit(request, pk):
    return _rule_form_page(request, get_object_or_404(ApprovalRule, pk=pk))


@require_POST
def approval_rule_delete(request, pk):
    _require(request.user, RULES_CHANGE)
    rule = get_object_or_404(ApprovalRule, pk=pk)
    services.approval_rule_delete(actor=request.user, rule=rule)
    messages.success(request, _("The approval rule was deleted."))
    return redirect("sales:approval-settings")


urlpatterns = [
    path("approvals/", approval_list, name="approval-list"),
    path("approvals/settings/", approval_settings, name="approval-settings"),
    path("approvals/rules/new/", approval_rule_create, name="approval-rule-create"),
    path("approvals/rules/<int:pk>/edit/", approval_rule_edit, name="approval-rule-edit"),
    path("approvals/rules/<int:pk>/delete/", approval_rule_delete, name="approval-rule-delete"),
    path("approvals/<int:pk>/", approval_detail, name="approval-detail"),
    path("approvals/<int:pk>/decide/", approval_decide, name="approval-decide"),
]
