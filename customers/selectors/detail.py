"""Reads of the customer page (R5.1.1): one customer in the user's scope, its tabs and its timeline.

Every read is scoped through ``crm.core.visibility``; the page costs a constant number of queries
whatever the number of phones, contacts, addresses or follow-ups.
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.urls import reverse
from django.utils.text import Truncator
from django.utils.translation import gettext

from crm.core.crypto import mask
from crm.core.registry import registry
from crm.core.visibility import Scope, get_visible_or_404, scope_for

from ..models import (
    Address,
    ContactPerson,
    Customer,
    CustomerEmail,
    CustomerPhone,
    Feedback,
    FollowUp,
    MarketingConsent,
    PoolEvent,
)
from ..registry import TimelineItem, TimelineSource, register_builtin
from .audit_timeline import audit_timeline_items

TAB_PAGE_SIZE = 20
TIMELINE_LIMIT = 50
BODY_CHARS = 300


def customer_detail_queryset():
    """Alive customers with everything the page header and the built-in tabs show."""
    return (
        Customer.objects.alive()
        .select_related("owner", "team", "level", "province", "city", "pool")
        .prefetch_related(
            "tags",
            "platform_accounts",
            Prefetch(
                "phones",
                queryset=CustomerPhone.objects.filter(contact__isnull=True),
                to_attr="own_phones",
            ),
            Prefetch(
                "emails",
                queryset=CustomerEmail.objects.filter(contact__isnull=True),
                to_attr="own_emails",
            ),
            Prefetch(
                "contacts",
                queryset=ContactPerson.objects.prefetch_related("phones", "emails"),
            ),
            Prefetch("addresses", queryset=Address.objects.select_related("region")),
        )
    )


def customer_get_for_user(*, user, pk) -> Customer:
    """The alive customer ``pk`` if ``user`` may see it; Http404 for missing, deleted or out of scope."""
    return get_visible_or_404(user, customer_detail_queryset(), pk=pk)


# Who may change what ---------------------------------------------------------------------------


def is_manager_in_scope(user) -> bool:
    """A manager (team or all scope) of a customer the user already sees."""
    return user.is_superuser or scope_for(user) in (Scope.TEAM, Scope.ALL)


def can_manage_followup(user, follow_up: FollowUp, verb: str = "change") -> bool:
    """The author, or a manager in scope holding ``customers.<verb>_followup``."""
    if user.is_superuser or follow_up.author_id == user.pk:
        return True
    return user.has_perm(f"customers.{verb}_followup") and is_manager_in_scope(user)


# Sensitive values -------------------------------------------------------------------------------
# The page masks every sensitive value for everyone: users holding accounts.view_sensitive_data
# unmask one value at a time with "show full number", which writes an audit entry (PIPL), so no
# full number is ever shown without a trace.


def masked(value: str, kind: str) -> str:
    return mask(value, kind) if value else ""


def primary(rows):
    """The primary row of a prefetched list (else the first), or None."""
    rows = list(rows)
    return next((r for r in rows if r.is_primary), rows[0] if rows else None)


def _decorate_phones(user, phones) -> list:
    for phone in phones:
        phone.shown = masked(phone.number, "phone")
        phone.reveal_field = f"phone:{phone.pk}"
    return phones


def _decorate_emails(user, emails) -> list:
    for email in emails:
        email.shown = masked(email.address, "email")
        email.reveal_field = f"email:{email.pk}"
    return emails


def customer_header(*, customer: Customer, user) -> dict:
    """The header card's contact details, masked for users without the permission."""
    phones = _decorate_phones(user, list(customer.own_phones))
    emails = _decorate_emails(user, list(customer.own_emails))
    return {
        "phones": phones,
        "emails": emails,
        "primary_phone": primary(phones),
        "primary_email": primary(emails),
        "wechat_shown": masked(customer.wechat_id, "text"),
        "tags": list(customer.tags.all()),
        "platform_accounts": list(customer.platform_accounts.all()),
    }


# Tab contexts (called for the active tab only) -------------------------------------------------


def _tab_url(customer: Customer, tab: str) -> str:
    return f"{reverse('customers:customer-detail', args=[customer.pk])}?tab={tab}"


def _page(request, queryset, param: str = "page"):
    return Paginator(queryset, TAB_PAGE_SIZE).get_page(request.GET.get(param))


def followups_tab_context(request, customer: Customer) -> dict:
    qs = FollowUp.objects.filter(customer=customer).select_related("author", "contact")
    page = _page(request, qs)
    for follow_up in page.object_list:
        follow_up.can_change = can_manage_followup(request.user, follow_up, "change")
        follow_up.can_delete = can_manage_followup(request.user, follow_up, "delete")
    return {"page_obj": page, "follow_ups": page.object_list}


def feedback_tab_context(request, customer: Customer) -> dict:
    page = _page(request, Feedback.objects.filter(customer=customer).select_related("recorded_by"))
    return {"page_obj": page, "feedback_list": page.object_list}


def contacts_tab_context(request, customer: Customer) -> dict:
    contacts = list(customer.contacts.all())
    for contact in contacts:
        contact.shown_phones = _decorate_phones(request.user, list(contact.phones.all()))
        contact.shown_emails = _decorate_emails(request.user, list(contact.emails.all()))
    return {"contacts": contacts}


def addresses_tab_context(request, customer: Customer) -> dict:
    addresses = list(customer.addresses.all())
    for address in addresses:
        address.shown_phone = masked(address.phone, "phone")
        address.shown_street = masked(address.street, "text")
        address.reveal_phone = f"address_phone:{address.pk}"
        address.reveal_street = f"street:{address.pk}"
    return {"addresses": addresses}


def consent_tab_context(request, customer: Customer) -> dict:
    consents = MarketingConsent.objects.filter(customer=customer).select_related(
        "recorded_by", "withdrawn_by"
    )
    return {"consents": list(consents[:100])}


def timeline_tab_context(request, customer: Customer) -> dict:
    return {"timeline": customer_timeline(customer=customer, user=request.user)}


# Timeline ---------------------------------------------------------------------------------------


def _body(text: str) -> str:
    return Truncator(text or "").chars(BODY_CHARS)


def _user_name(user) -> str:
    if user is None:
        return gettext("the system")
    return getattr(user, "display_name", "") or user.get_username()


def followup_items(customer, user, limit: int) -> list[TimelineItem]:
    if not user.has_perm("customers.view_followup"):
        return []
    url = _tab_url(customer, "followups")
    rows = FollowUp.objects.filter(customer=customer).select_related("author")[:limit]
    return [
        TimelineItem(
            when=f.occurred_at,
            icon="chat-dots",
            title=gettext("%(method)s by %(author)s")
            % {"method": f.get_method_display(), "author": _user_name(f.author)},
            body=_body(f.content),
            url=url,
            kind="followup",
        )
        for f in rows
    ]


FEEDBACK_ICONS = {"praise": "hand-thumbs-up", "suggestion": "lightbulb", "complaint": "exclamation-octagon"}


def feedback_items(customer, user, limit: int) -> list[TimelineItem]:
    if not user.has_perm("customers.view_feedback"):
        return []
    url = _tab_url(customer, "feedback")
    items = []
    for fb in Feedback.objects.filter(customer=customer)[:limit]:
        if fb.rating:
            title = gettext("%(kind)s via %(channel)s, rated %(rating)s/5") % {
                "kind": fb.get_kind_display(),
                "channel": fb.get_channel_display(),
                "rating": fb.rating,
            }
        else:
            title = gettext("%(kind)s via %(channel)s") % {
                "kind": fb.get_kind_display(),
                "channel": fb.get_channel_display(),
            }
        items.append(
            TimelineItem(
                when=fb.received_at,
                icon=FEEDBACK_ICONS.get(fb.kind, "star"),
                title=title,
                body=_body(fb.content),
                url=url,
                kind="feedback",
            )
        )
    return items


def consent_items(customer, user, limit: int) -> list[TimelineItem]:
    if not user.has_perm("customers.view_marketingconsent"):
        return []
    url = _tab_url(customer, "consent")
    items = []
    for consent in MarketingConsent.objects.filter(customer=customer)[:limit]:
        channel = consent.get_channel_display()
        items.append(
            TimelineItem(
                when=consent.granted_at,
                icon="shield-check",
                title=gettext("Consent to marketing by %(channel)s granted") % {"channel": channel},
                body=_body(consent.source),
                url=url,
                kind="consent",
            )
        )
        if consent.withdrawn_at:
            items.append(
                TimelineItem(
                    when=consent.withdrawn_at,
                    icon="shield-x",
                    title=gettext("Consent to marketing by %(channel)s withdrawn") % {"channel": channel},
                    url=url,
                    kind="consent",
                )
            )
    return items


POOL_ICONS = {
    "claim": "box-arrow-in-down",
    "release": "box-arrow-up",
    "assign": "person-check",
    "recycle": "recycle",
    "warn": "alarm",
}


def pool_event_items(customer, user, limit: int) -> list[TimelineItem]:
    rows = PoolEvent.objects.filter(customer=customer).select_related("pool", "user")[:limit]
    return [
        TimelineItem(
            when=e.created_at,
            icon=POOL_ICONS.get(e.action, "inboxes"),
            title=gettext("%(action)s (%(pool)s) by %(user)s")
            % {
                "action": e.get_action_display(),
                "pool": e.pool or gettext("no pool"),
                "user": _user_name(e.user),
            },
            body=_body(e.reason),
            kind="pool",
        )
        for e in rows
    ]


def audit_items(customer, user, limit: int) -> list[TimelineItem]:
    """The customer's own ledger entries, rendered in the viewer's language from their structured
    fields (see ``customers.selectors.audit_timeline``): what happened and who did it, never the
    values."""
    return audit_timeline_items(customer, limit)


BUILTIN_TIMELINE_SOURCES = (
    TimelineSource(key="followups", fetch=followup_items),
    TimelineSource(key="feedback", fetch=feedback_items),
    TimelineSource(key="consents", fetch=consent_items),
    TimelineSource(key="pool_events", fetch=pool_event_items),
    TimelineSource(key="audit", fetch=audit_items),
)


def customer_timeline(*, customer: Customer, user, limit: int = TIMELINE_LIMIT) -> list[TimelineItem]:
    """Everything that happened to ``customer`` that ``user`` may see, newest first, at most ``limit``.

    Merges the built-in sources (follow-ups, feedback, consent, pool events, audit entries) with
    the sources later apps register in ``crm.core.registry.registry.timeline_sources``.
    """
    register_builtin()
    items: list[TimelineItem] = []
    for source in registry.timeline_sources.values():
        items.extend(source.fetch(customer, user, limit))
    items.sort(key=lambda item: item.when, reverse=True)
    return items[:limit]
