"""Approvals (审批) of quotes and orders (R5.2.1).

A *document* is a ``Quote`` or an ``Order``. Active ``ApprovalRule`` rows, in priority order,
decide whether it needs approval:

* ``discount``: the document's largest discount (``max_discount_rate``) is above the limit of its
  owner's role (``RoleDiscountLimit``; a user with several roles gets the most generous limit; a role
  without a row, and a superuser, has no limit);
* ``amount``: the document's total is above the rule's ``min_amount``.

``approval_needed`` returns the reason codes (``["discount", "amount"]``; empty = none). A document
already approved for at least its current discount and amount (or an order made from a quote that
was) needs nothing more: an approval is a ceiling, not a one-off.

``approval_request`` opens a request addressed by the first matching rule: to the owner's manager
(else the leader of the owner's team, else any Administrator) or to everyone holding a role. A quote
moves to "awaiting approval"; an order's status is the orders services' business (``order_confirm``
moves it and calls ``approval_request``). ``approval_decide`` records the decision with its comment
in the audit ledger, on the document's history (an audit entry on the document itself) and notifies
the requester; a quote becomes "approved" (it may then be sent) or returns to draft, an order
continues through ``sales.services.orders.order_approved`` or ``order_approval_rejected``.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.accounts import roles
from crm.core.audit.models import AuditAction
from crm.core.audit.services import audit_model_create, audit_model_update, audit_record, snapshot
from crm.core.notifications.services import lazy_format, notify
from sales.models import ApprovalRequest, ApprovalRule, Order, Quote, RoleDiscountLimit
from sales.services.pricing import clean_price, clean_rate

__all__ = [
    "APPROVE_PERMISSION",
    "REASON_LABELS",
    "approval_cancel_pending",
    "approval_decide",
    "approval_needed",
    "approval_request",
    "approval_rule_create",
    "approval_rule_delete",
    "approval_rule_update",
    "can_decide",
    "discount_limit_for",
    "ensure_default_rules",
    "reason_text",
    "role_discount_limit_set",
]

APPROVE_PERMISSION = "sales.approve_quote"
RULES_PERMISSION = "sales.change_approvalrule"
REASON_DISCOUNT = ApprovalRule.Condition.DISCOUNT.value
REASON_AMOUNT = ApprovalRule.Condition.AMOUNT.value
REASON_LABELS = {
    REASON_DISCOUNT: gettext_lazy("Discount above the owner's limit"),
    REASON_AMOUNT: gettext_lazy("Amount above the approval threshold"),
}
MAX_COMMENT = 2000
# Installed on first migrate when no rule and no limit exists (see ensure_default_rules).
DEFAULT_LIMITS = {roles.SALES_REP: Decimal("0.1000"), roles.SALES_MANAGER: Decimal("0.2500")}


# Documents ----------------------------------------------------------------------------------------


def _kind(document) -> str:
    if isinstance(document, Quote):
        return ApprovalRule.AppliesTo.QUOTES
    if isinstance(document, Order):
        return ApprovalRule.AppliesTo.ORDERS
    raise TypeError(f"Approvals apply to quotes and orders, not {type(document).__name__}")


def _amount(document) -> Decimal:
    return document.total if isinstance(document, Quote) else document.total_amount


def _requests_for(document) -> QuerySet:
    if isinstance(document, Quote):
        return ApprovalRequest.objects.filter(quote=document)
    return ApprovalRequest.objects.filter(order=document)


def _document_of(request: ApprovalRequest):
    return request.quote if request.quote_id else request.order


# Limits and rules ---------------------------------------------------------------------------------


def discount_limit_for(user) -> Decimal | None:
    """The largest discount ``user`` may give without approval; None = no limit."""
    if user is None or user.is_superuser:
        return None
    role_names = list(user.groups.values_list("name", flat=True))
    if not role_names:
        return Decimal("0")
    limits = dict(
        RoleDiscountLimit.objects.filter(role__in=role_names).values_list("role", "max_discount_rate")
    )
    if any(name not in limits for name in role_names):
        return None  # one of the user's roles has no limit
    return max(limits.values())


def _rules_for(kind: str) -> list[ApprovalRule]:
    return list(
        ApprovalRule.objects.filter(is_active=True, applies_to__in=[kind, ApprovalRule.AppliesTo.BOTH])
    )


def _rule_matches(rule: ApprovalRule, document, owner, limit_cache: dict) -> bool:
    if rule.condition == ApprovalRule.Condition.DISCOUNT:
        if "limit" not in limit_cache:
            limit_cache["limit"] = discount_limit_for(owner)
        limit = limit_cache["limit"]
        return limit is not None and document.max_discount_rate > limit
    if rule.condition == ApprovalRule.Condition.AMOUNT:
        return rule.min_amount is not None and _amount(document) > rule.min_amount
    return False


def _already_approved(document) -> bool:
    """True when an approval granted for this document (or, for an order, its quote) covers its
    current discount and amount."""
    covering = Q(
        status=ApprovalRequest.Status.APPROVED,
        discount_rate__gte=document.max_discount_rate,
        amount__gte=_amount(document),
    )
    if isinstance(document, Quote):
        return ApprovalRequest.objects.filter(covering, quote=document).exists()
    where = Q(order=document)
    if document.quote_id:
        where |= Q(quote_id=document.quote_id)
    return ApprovalRequest.objects.filter(covering & where).exists()


def _evaluate(document, owner) -> tuple[list[str], ApprovalRule | None]:
    reasons: list[str] = []
    first_rule = None
    cache: dict = {}
    for rule in _rules_for(_kind(document)):
        if _rule_matches(rule, document, owner, cache):
            if rule.condition not in reasons:
                reasons.append(rule.condition)
            first_rule = first_rule or rule
    return reasons, first_rule


def approval_needed(*, document, actor) -> list[str]:
    """Why ``document`` needs approval before it is sent (quote) or confirmed (order), as reason
    codes ("discount", "amount"); an empty list when it needs none (or is already approved for
    these terms). ``actor`` is who asks; the rules look at the document's owner."""
    owner = document.owner if document.owner_id else actor
    reasons, _rule = _evaluate(document, owner)
    if reasons and _already_approved(document):
        return []
    return reasons


# Approvers ----------------------------------------------------------------------------------------


def _active(user):
    return user if user is not None and user.is_active else None


def _approver_for(rule: ApprovalRule, owner) -> tuple[object | None, str]:
    """(user, role): who decides a request opened under ``rule`` for a document of ``owner``."""
    if rule.approver == ApprovalRule.Approver.ROLE and rule.approver_role:
        return None, rule.approver_role
    if owner is not None:
        manager = _active(owner.manager) if owner.manager_id else None
        if manager is not None and manager.pk != owner.pk:
            return manager, ""
        leader = _active(owner.team.leader) if owner.team_id and owner.team.leader_id else None
        if leader is not None and leader.pk != owner.pk:
            return leader, ""
    return None, roles.ADMINISTRATOR


def _users_with_role(role: str) -> QuerySet:
    return get_user_model()._default_manager.filter(is_active=True, groups__name=role).distinct()


def _recipients(request: ApprovalRequest) -> list:
    if request.approver_user_id:
        return [request.approver_user]
    return list(_users_with_role(request.approver_role).exclude(pk=request.requested_by_id)[:50])


def can_decide(user, request: ApprovalRequest) -> bool:
    """May ``user`` approve or reject ``request``? The addressed approver, anyone in the addressed
    role, or an Administrator -- never the person who asked or owns the document."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if not user.has_perm(APPROVE_PERMISSION) or request.status != ApprovalRequest.Status.PENDING:
        return False
    document = _document_of(request)
    if user.pk in (request.requested_by_id, getattr(document, "owner_id", None)):
        return False
    if user.is_superuser or request.approver_user_id == user.pk:
        return True
    role_names = set(user.groups.values_list("name", flat=True))
    return roles.ADMINISTRATOR in role_names or (
        bool(request.approver_role) and request.approver_role in role_names
    )


# Requests and decisions ---------------------------------------------------------------------------


def reason_text(codes) -> str:
    return "; ".join(str(REASON_LABELS.get(code, code)) for code in codes)


@transaction.atomic
def approval_request(*, actor, document) -> ApprovalRequest:
    """Ask for approval of ``document``; returns the pending request (the existing one if there is
    one). ValidationError when the document needs no approval or is not in a state to ask."""
    kind = _kind(document)
    if isinstance(document, Quote):
        document = Quote.objects.select_for_update().select_related("owner").get(pk=document.pk)
        if document.status not in (Quote.Status.DRAFT, Quote.Status.PENDING_APPROVAL):
            raise ValidationError(
                _("Only a draft quote can be sent for approval (quote %(number)s is “%(status)s”).")
                % {"number": document.number, "status": document.get_status_display()},
                code="approval_state",
            )
    pending = _requests_for(document).filter(status=ApprovalRequest.Status.PENDING).first()
    if pending is not None:
        return pending
    owner = document.owner if document.owner_id else actor
    reasons, rule = _evaluate(document, owner)
    if not reasons or _already_approved(document):
        raise ValidationError(
            _("%(number)s needs no approval.") % {"number": document.number}, code="approval_not_needed"
        )
    approver_user, approver_role = _approver_for(rule, owner)
    request = ApprovalRequest(
        rule=rule,
        reasons=reasons,
        requested_by=actor,
        approver_user=approver_user,
        approver_role=approver_role,
        amount=_amount(document),
        discount_rate=document.max_discount_rate,
    )
    if kind == ApprovalRule.AppliesTo.QUOTES:
        request.quote = document
    else:
        request.order = document
    request.save()
    audit_model_create(actor=actor, instance=request)
    if isinstance(document, Quote):
        before = snapshot(document, fields=["status"])
        document.status = Quote.Status.PENDING_APPROVAL
        document.save(update_fields=["status", "updated_at"])
        audit_model_update(actor=actor, instance=document, before=before)
    audit_record(
        action=AuditAction.OTHER,
        actor=actor,
        obj=document,
        changes={"approval": [None, "requested"], "reasons": reasons, "request": request.pk},
        message="approval requested",
    )
    notify(
        recipients=_recipients(request),
        title=lazy_format(gettext_lazy("Approval needed: %(number)s"), number=document.number),
        body=lazy_format(
            gettext_lazy(
                "%(user)s asks you to approve %(number)s (total %(amount)s, discount up to %(rate)s%%)."
            ),
            user=actor.get_display_name() if actor else "",
            number=document.number,
            amount=request.amount,
            rate=(request.discount_rate * 100).quantize(Decimal("0.01")),
        ),
        url=_approval_url(request),
        category="approval",
        email=True,
        actor=actor,
    )
    return request


def _approval_url(request: ApprovalRequest) -> str:
    from django.urls import NoReverseMatch, reverse

    try:
        return reverse("sales:approval-detail", args=[request.pk])
    except NoReverseMatch:  # pragma: no cover - the URL always exists in the project
        return ""


@transaction.atomic
def approval_decide(*, actor, request: ApprovalRequest, approve: bool, comment: str = "") -> ApprovalRequest:
    """Approve or reject a pending request. A rejection needs a comment. The quote becomes
    approved (or returns to draft); an order continues in sales.services.orders."""
    request = ApprovalRequest.objects.select_for_update().get(pk=request.pk)
    comment = (comment or "").strip()
    if request.status != ApprovalRequest.Status.PENDING:
        raise ValidationError(
            _("This request was already decided (%(status)s).") % {"status": request.get_status_display()},
            code="approval_decided",
        )
    if not can_decide(actor, request):
        raise PermissionDenied(_("You cannot decide this approval request."))
    if len(comment) > MAX_COMMENT:
        raise ValidationError(
            {"comment": _("Keep the comment under %(limit)s characters.") % {"limit": MAX_COMMENT}}
        )
    if not approve and not comment:
        raise ValidationError({"comment": _("Say why you reject it: the comment is required.")})
    # Lock the document before the audit ledger head (the first audit write below takes it):
    # the same order as the order and inventory services, so two decisions cannot deadlock.
    if request.quote_id:
        list(Quote.objects.select_for_update().filter(pk=request.quote_id).values_list("pk"))
    else:
        list(Order.objects.select_for_update().filter(pk=request.order_id).values_list("pk"))
    before = snapshot(request, fields=["status", "decided_by", "decided_at", "comment"])
    request.status = ApprovalRequest.Status.APPROVED if approve else ApprovalRequest.Status.REJECTED
    request.decided_by = actor
    request.decided_at = timezone.now()
    request.comment = comment
    request.save(update_fields=["status", "decided_by", "decided_at", "comment"])
    audit_model_update(actor=actor, instance=request, before=before)
    document = _document_of(request)
    verdict = "approved" if approve else "rejected"
    audit_record(
        action=AuditAction.OTHER,
        actor=actor,
        obj=document,
        changes={"approval": ["requested", verdict], "comment": comment, "request": request.pk},
        message=f"approval {verdict}",
    )
    if isinstance(document, Quote):
        quote = Quote.objects.select_for_update().get(pk=document.pk)
        if quote.status == Quote.Status.PENDING_APPROVAL:
            quote_before = snapshot(quote, fields=["status"])
            quote.status = Quote.Status.APPROVED if approve else Quote.Status.DRAFT
            quote.save(update_fields=["status", "updated_at"])
            audit_model_update(actor=actor, instance=quote, before=quote_before)
        document = quote
    else:
        from sales.services import orders as order_services

        if approve:
            order_services.order_approved(actor=actor, order=document)
        else:
            order_services.order_approval_rejected(actor=actor, order=document, comment=comment)
    if approve:
        title = lazy_format(gettext_lazy("%(number)s was approved"), number=document.number)
    else:
        title = lazy_format(gettext_lazy("%(number)s was rejected"), number=document.number)
    notify(
        recipients=[request.requested_by, document.owner],
        title=title,
        body=comment,
        url=document.get_absolute_url(),
        level="success" if approve else "warning",
        category="approval",
        email=True,
        actor=actor,
    )
    return request


@transaction.atomic
def approval_cancel_pending(*, actor, document, reason: str = "") -> int:
    """Withdraw the pending requests of ``document`` (it was edited or revised). Returns how many."""
    count = 0
    for request in _requests_for(document).select_for_update().filter(status=ApprovalRequest.Status.PENDING):
        before = snapshot(request, fields=["status"])
        request.status = ApprovalRequest.Status.CANCELLED
        request.decided_at = timezone.now()
        request.save(update_fields=["status", "decided_at"])
        audit_model_update(actor=actor, instance=request, before=before, message=reason)
        count += 1
    return count


# Configuration --------------------------------------------------------------------------------------


def _require_rules_permission(actor) -> None:
    if actor is None or not actor.has_perm(RULES_PERMISSION):
        raise PermissionDenied(_("You may not change approval rules."))


@transaction.atomic
def role_discount_limit_set(*, actor, role: str, max_discount_rate) -> RoleDiscountLimit | None:
    """Set (or with ``None`` remove) the largest discount a role may give without approval."""
    _require_rules_permission(actor)
    if role not in roles.ROLE_LABELS:
        raise ValidationError({"role": _("Unknown role: %(role)s") % {"role": role}})
    current = RoleDiscountLimit.objects.filter(role=role).first()
    if max_discount_rate in (None, ""):
        if current is not None:
            audit_record(action=AuditAction.DELETE, actor=actor, obj=current, changes={"role": [role, None]})
            current.delete()
        return None
    try:
        rate = clean_rate(max_discount_rate)
    except ValidationError as exc:
        raise ValidationError({"max_discount_rate": exc.messages}) from None
    if current is None:
        current = RoleDiscountLimit.objects.create(role=role, max_discount_rate=rate)
        audit_model_create(actor=actor, instance=current)
    elif current.max_discount_rate != rate:
        before = snapshot(current)
        current.max_discount_rate = rate
        current.save(update_fields=["max_discount_rate"])
        audit_model_update(actor=actor, instance=current, before=before)
    return current


RULE_FIELDS = (
    "name",
    "applies_to",
    "condition",
    "min_amount",
    "approver",
    "approver_role",
    "priority",
    "is_active",
)


def _clean_rule(values: dict) -> dict:
    errors: dict[str, list] = {}
    name = str(values.get("name") or "").strip()
    if not name:
        errors.setdefault("name", []).append(_("Give the rule a name."))
    elif len(name) > 100:
        errors.setdefault("name", []).append(_("Keep the name under 100 characters."))
    cleaned = {"name": name}
    for field, choices in (
        ("applies_to", ApprovalRule.AppliesTo),
        ("condition", ApprovalRule.Condition),
        ("approver", ApprovalRule.Approver),
    ):
        value = values.get(field) or ""
        if value not in choices.values:
            errors.setdefault(field, []).append(_("Choose one of the options."))
        cleaned[field] = value
    min_amount = values.get("min_amount")
    cleaned["min_amount"] = None
    if cleaned["condition"] == ApprovalRule.Condition.AMOUNT:
        if min_amount in (None, ""):
            errors.setdefault("min_amount", []).append(_("An amount rule needs the amount threshold."))
        else:
            try:
                cleaned["min_amount"] = clean_price(min_amount)
            except ValidationError as exc:
                errors.setdefault("min_amount", []).extend(exc.messages)
    role = values.get("approver_role") or ""
    if role and role not in roles.ROLE_LABELS:
        errors.setdefault("approver_role", []).append(_("Unknown role: %(role)s") % {"role": role})
    if cleaned["approver"] == ApprovalRule.Approver.ROLE and not role:
        errors.setdefault("approver_role", []).append(_("Choose the role that approves."))
    cleaned["approver_role"] = role if cleaned["approver"] == ApprovalRule.Approver.ROLE else ""
    try:
        priority = int(values.get("priority", 100))
        if priority < 0 or priority > 100000:
            raise ValueError
    except (TypeError, ValueError):
        errors.setdefault("priority", []).append(_("Enter a whole number from 0 to 100000."))
        priority = 100
    cleaned["priority"] = priority
    cleaned["is_active"] = bool(values.get("is_active", True))
    if errors:
        raise ValidationError(errors)
    return cleaned


@transaction.atomic
def approval_rule_create(*, actor, **values) -> ApprovalRule:
    _require_rules_permission(actor)
    unknown = set(values) - set(RULE_FIELDS)
    if unknown:
        raise TypeError(f"approval_rule_create() got unexpected fields: {', '.join(sorted(unknown))}")
    rule = ApprovalRule.objects.create(**_clean_rule(values))
    audit_model_create(actor=actor, instance=rule)
    return rule


@transaction.atomic
def approval_rule_update(*, actor, rule: ApprovalRule, **values) -> ApprovalRule:
    _require_rules_permission(actor)
    unknown = set(values) - set(RULE_FIELDS)
    if unknown:
        raise TypeError(f"approval_rule_update() got unexpected fields: {', '.join(sorted(unknown))}")
    rule = ApprovalRule.objects.select_for_update().get(pk=rule.pk)
    merged = {field: getattr(rule, field) for field in RULE_FIELDS}
    merged.update(values)
    cleaned = _clean_rule(merged)
    before = snapshot(rule)
    for field, value in cleaned.items():
        setattr(rule, field, value)
    rule.save()
    audit_model_update(actor=actor, instance=rule, before=before)
    return rule


@transaction.atomic
def approval_rule_delete(*, actor, rule: ApprovalRule) -> None:
    _require_rules_permission(actor)
    audit_record(action=AuditAction.DELETE, actor=actor, obj=rule, changes={"name": [rule.name, None]})
    rule.delete()


def ensure_default_rules() -> bool:
    """On a new installation (no rule and no limit at all): reps may give 10% and managers 25%
    without approval; above that the owner's manager approves. Returns True when it created them."""
    if ApprovalRule.objects.exists() or RoleDiscountLimit.objects.exists():
        return False
    with transaction.atomic(), translation.override(settings.LANGUAGE_CODE):
        for role, rate in DEFAULT_LIMITS.items():
            RoleDiscountLimit.objects.create(role=role, max_discount_rate=rate)
        ApprovalRule.objects.create(
            name=_("Discount above the role limit"),
            applies_to=ApprovalRule.AppliesTo.BOTH,
            condition=ApprovalRule.Condition.DISCOUNT,
            approver=ApprovalRule.Approver.MANAGER,
            priority=10,
        )
    return True
