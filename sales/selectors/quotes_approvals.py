"""Reads of approval requests (R5.2.1): the approver's inbox (what I may decide), what I decided,
what I asked for, and one request. A request is visible to whom it is addressed (the user, the
role, any Administrator), to whom asked, and to whoever may see its document."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.accounts import roles
from crm.core.visibility import scope_q
from sales.models import ApprovalRequest, ApprovalRule, Order, Quote, RoleDiscountLimit

PAGE_SIZE = 20
TABS = {
    "inbox": gettext_lazy("To decide"),
    "decided": gettext_lazy("Decided by me"),
    "mine": gettext_lazy("My requests"),
}


def _role_names(user) -> list[str]:
    cached = getattr(user, "_approval_role_names", None)
    if cached is None:
        cached = list(user.groups.values_list("name", flat=True))
        user._approval_role_names = cached
    return cached


def is_admin(user) -> bool:
    return bool(user.is_superuser or roles.ADMINISTRATOR in _role_names(user))


def _with_documents(queryset: QuerySet) -> QuerySet:
    return queryset.select_related(
        "quote__customer", "order__customer", "requested_by", "approver_user", "decided_by", "rule"
    )


def addressed_q(user) -> Q:
    """Requests addressed to ``user``: to them, to one of their roles, or (Administrators) all."""
    if is_admin(user):
        return Q()
    q = Q(approver_user=user)
    names = _role_names(user)
    if names:
        q |= Q(approver_role__in=names)
    return q


def approval_inbox_for_user(*, user) -> QuerySet[ApprovalRequest]:
    """Pending requests ``user`` may decide (never their own), oldest first."""
    if not user.is_authenticated or not user.has_perm("sales.approve_quote"):
        return ApprovalRequest.objects.none()
    queryset = (
        ApprovalRequest.objects.filter(addressed_q(user), status=ApprovalRequest.Status.PENDING)
        .exclude(requested_by=user)
        .exclude(quote__owner=user)
        .exclude(order__owner=user)
    )
    return _with_documents(queryset).order_by("requested_at", "id")


def approval_inbox_count(user) -> int:
    return approval_inbox_for_user(user=user).count()


def _visible_q(user) -> Q:
    """Requests ``user`` may look at."""
    if not user.is_authenticated:
        return Q(pk__in=[])
    q = Q(requested_by=user) | Q(decided_by=user)
    if user.has_perm("sales.approve_quote"):
        q |= addressed_q(user)
    if user.has_perm("sales.view_quote"):
        q |= Q(quote__isnull=False) & scope_q(user, Quote, prefix="quote__")
    if user.has_perm("sales.view_order"):
        q |= Q(order__isnull=False) & scope_q(user, Order, prefix="order__")
    return q


def approval_list_for_user(*, user, tab: str = "inbox", filters=None) -> QuerySet[ApprovalRequest]:
    """The requests of one tab of the approvals page."""
    if tab == "inbox":
        queryset = approval_inbox_for_user(user=user)
    elif tab == "decided":
        queryset = _with_documents(ApprovalRequest.objects.filter(decided_by=user)).order_by(
            "-decided_at", "-id"
        )
    else:
        queryset = _with_documents(ApprovalRequest.objects.filter(requested_by=user)).order_by(
            "-requested_at", "-id"
        )
    q = str((filters or {}).get("q", "") or "").strip()[:60]
    if q:
        queryset = queryset.filter(
            Q(quote__number__istartswith=q)
            | Q(order__number__istartswith=q)
            | Q(quote__customer__name__icontains=q)
            | Q(order__customer__name__icontains=q)
        )
    return queryset


def approval_get_for_user(*, user, pk) -> ApprovalRequest:
    """One request the user may look at (404 otherwise, the same for missing)."""
    try:
        return _with_documents(ApprovalRequest.objects.filter(_visible_q(user))).distinct().get(pk=int(pk))
    except (ApprovalRequest.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404(_("No such record.")) from exc


def approval_document_lines(request: ApprovalRequest) -> list:
    """The lines of the request's document, for the approver's summary."""
    document = request.quote if request.quote_id else request.order
    return list(document.lines.select_related("product").order_by("position", "id"))


def approval_rules() -> QuerySet[ApprovalRule]:
    return ApprovalRule.objects.order_by("priority", "id")


def approval_limits() -> dict[str, RoleDiscountLimit]:
    return {limit.role: limit for limit in RoleDiscountLimit.objects.all()}
