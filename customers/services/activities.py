"""Writes on the customer page (R5.1.1, R7.1.1, R7.2.4): follow-ups, feedback, contact persons,
addresses, marketing consent (PIPL), revealing a sensitive value, and the personal-data export.

Every function is keyword-only, names the acting user, checks that the actor may do it (the
customer in the actor's scope and the model permission), validates everything first (a
``ValidationError`` keyed by field, translated), writes in one transaction and appends the audit
entry last. Sensitive values reach the ledger only as "changed".
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.core import visibility
from crm.core.audit.models import AuditAction
from crm.core.audit.services import (
    CHANGED,
    audit_model_create,
    audit_model_delete,
    audit_record,
    audit_record_many,
    audit_view_sensitive,
    creation_changes,
    diff,
    snapshot,
)
from crm.core.bulk import insert_instances
from crm.core.crypto import can_view_sensitive, normalize_phone
from crm.core.jobs import xlsx
from crm.core.regions import selectors as region_selectors
from crm.core.regions.models import Region
from crm.core.validators import validate_email, validate_phone

from ..models import (
    Address,
    ContactPerson,
    Customer,
    CustomerEmail,
    CustomerKind,
    CustomerPhone,
    Feedback,
    FollowUp,
    MarketingConsent,
    PhoneLabel,
    PlatformAccount,
    PoolEvent,
)
from ..selectors.detail import can_manage_followup
from . import records

__all__ = [
    "REVEALABLE",
    "address_create",
    "address_delete",
    "address_update",
    "consent_grant",
    "consent_withdraw",
    "contact_create",
    "contact_delete",
    "contact_update",
    "customer_personal_data_export",
    "customer_reveal_sensitive",
    "feedback_create",
    "followup_create",
    "followup_delete",
    "followup_update",
]

# A follow-up records a contact that happened; a clock a few minutes fast must not be refused.
FUTURE_TOLERANCE = datetime.timedelta(minutes=5)
MAX_CONTACT_ITEMS = 10


# Guards -----------------------------------------------------------------------------------------


def _require(actor, permission: str, customer: Customer) -> None:
    """PermissionDenied unless ``actor`` holds ``permission`` and sees the (alive) customer."""
    if actor is None or not actor.is_authenticated or not actor.has_perm(permission):
        raise PermissionDenied(_("You do not have permission to do this."))
    if customer.is_deleted or not visibility.is_visible(actor, customer):
        raise PermissionDenied(_("You do not have permission to do this."))


def _aware(value):
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return value if timezone.is_aware(value) else timezone.make_aware(value)
    raise ValidationError(_("Enter a valid date and time."), code="invalid")


def _not_future(value, field: str, message: str) -> None:
    if value is not None and value > timezone.now() + FUTURE_TOLERANCE:
        raise ValidationError({field: ValidationError(message, code="future")})


def _full_clean(instance, exclude: Iterable[str] = ()) -> None:
    instance.full_clean(exclude=list(exclude), validate_unique=False, validate_constraints=False)


# Follow-ups ---------------------------------------------------------------------------------------

FOLLOWUP_FIELDS = ("occurred_at", "method", "content", "next_step", "next_date", "contact")


def _refresh_last_follow_up(customer: Customer) -> None:
    latest = FollowUp.objects.filter(customer=customer).aggregate(latest=Max("occurred_at"))["latest"]
    if latest != customer.last_follow_up_at:
        Customer.objects.filter(pk=customer.pk).update(last_follow_up_at=latest)
        customer.last_follow_up_at = latest


def _validate_followup(follow_up: FollowUp) -> None:
    follow_up.content = (follow_up.content or "").strip()
    follow_up.next_step = (follow_up.next_step or "").strip()
    follow_up.occurred_at = _aware(follow_up.occurred_at)
    errors: dict[str, list] = {}
    if follow_up.contact_id and follow_up.contact.customer_id != follow_up.customer_id:
        errors["contact"] = [_("Choose a contact person of this customer.")]
    if follow_up.occurred_at and follow_up.occurred_at > timezone.now() + FUTURE_TOLERANCE:
        errors["occurred_at"] = [
            _("A follow-up records a contact that has happened: use the next step date to plan one.")
        ]
    if (
        follow_up.next_date
        and follow_up.occurred_at
        and follow_up.next_date < timezone.localtime(follow_up.occurred_at).date()
    ):
        errors["next_date"] = [_("The next step cannot come before the follow-up itself.")]
    if follow_up.next_date and not follow_up.next_step:
        errors["next_step"] = [_("Describe the next step planned for that date.")]
    try:
        _full_clean(follow_up)
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def followup_create(
    *,
    actor,
    customer: Customer,
    content: str,
    method: str = FollowUp.Method.CALL,
    occurred_at: datetime.datetime | None = None,
    next_step: str = "",
    next_date: datetime.date | None = None,
    contact: ContactPerson | None = None,
) -> FollowUp:
    """Record a follow-up (跟进记录) by ``actor`` and move the customer's last follow-up time."""
    _require(actor, "customers.add_followup", customer)
    follow_up = FollowUp(
        customer=customer,
        author=actor,
        content=content,
        method=method,
        occurred_at=occurred_at or timezone.now(),
        next_step=next_step,
        next_date=next_date,
        contact=contact,
    )
    _validate_followup(follow_up)
    follow_up.save()
    _refresh_last_follow_up(customer)
    audit_model_create(actor=actor, instance=follow_up)
    return follow_up


def _require_followup(actor, follow_up: FollowUp, verb: str) -> None:
    _require(actor, "customers.view_followup", follow_up.customer)
    if not can_manage_followup(actor, follow_up, verb):
        raise PermissionDenied(_("Only the author or a manager may change this follow-up."))


@transaction.atomic
def followup_update(*, actor, follow_up: FollowUp, **fields) -> FollowUp:
    """Change a follow-up (its author, or a manager in scope). Fields: see ``followup_create``."""
    unknown = set(fields) - set(FOLLOWUP_FIELDS)
    if unknown:
        raise TypeError(f"Unknown follow-up fields: {', '.join(sorted(unknown))}")
    _require_followup(actor, follow_up, "change")
    before = snapshot(follow_up)
    for name, value in fields.items():
        setattr(follow_up, name, value)
    _validate_followup(follow_up)
    follow_up.save()
    _refresh_last_follow_up(follow_up.customer)
    audit_record(
        action=AuditAction.UPDATE,
        actor=actor,
        obj=follow_up,
        changes=diff(before, snapshot(follow_up), FollowUp),
    )
    return follow_up


@transaction.atomic
def followup_delete(*, actor, follow_up: FollowUp) -> None:
    _require_followup(actor, follow_up, "delete")
    customer = follow_up.customer
    audit_model_delete(actor=actor, instance=follow_up)
    follow_up.delete()
    _refresh_last_follow_up(customer)


# Feedback -----------------------------------------------------------------------------------------


@transaction.atomic
def feedback_create(
    *,
    actor,
    customer: Customer,
    kind: str,
    content: str,
    channel: str = Feedback.Channel.OTHER,
    rating: int | None = None,
    received_at: datetime.datetime | None = None,
) -> Feedback:
    """Record praise, a suggestion or a complaint, with its channel and an optional 1-5 rating."""
    _require(actor, "customers.add_feedback", customer)
    feedback = Feedback(
        customer=customer,
        kind=kind,
        content=(content or "").strip(),
        channel=channel,
        rating=rating,
        received_at=_aware(received_at) or timezone.now(),
        recorded_by=actor,
    )
    errors: dict[str, list] = {}
    if rating is not None and not (isinstance(rating, int) and 1 <= rating <= 5):
        errors["rating"] = [_("Give a rating from 1 to 5, or none.")]
    if feedback.received_at > timezone.now() + FUTURE_TOLERANCE:
        errors["received_at"] = [_("Feedback cannot be received in the future.")]
    try:
        _full_clean(feedback, exclude=["rating"] if "rating" in errors else ())
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationError(errors)
    feedback.save()
    audit_model_create(actor=actor, instance=feedback)
    return feedback


# Contact persons ----------------------------------------------------------------------------------


def _clean_contact_phones(items) -> list[dict]:
    cleaned, seen, messages = [], set(), []
    for item in items or ():
        entry = {"number": item} if isinstance(item, str) else dict(item)
        number = (entry.get("number") or "").strip()
        if not number:
            continue
        label = entry.get("label") or PhoneLabel.MOBILE
        try:
            validate_phone(number)
        except ValidationError as exc:
            messages.append(_("%(value)s: %(message)s") % {"value": number, "message": exc.messages[0]})
            continue
        if label not in PhoneLabel.values:
            messages.append(_("Choose a valid phone label."))
            continue
        if normalize_phone(number) in seen:
            continue
        seen.add(normalize_phone(number))
        cleaned.append({"number": number, "label": label})
    if len(cleaned) > MAX_CONTACT_ITEMS:
        messages.append(
            _("A contact person can have at most %(count)d phones.") % {"count": MAX_CONTACT_ITEMS}
        )
    if messages:
        raise ValidationError({"phones": messages})
    return cleaned


def _clean_contact_emails(items) -> list[str]:
    cleaned, seen, messages = [], set(), []
    for item in items or ():
        address = (item if isinstance(item, str) else (item.get("address") or "")).strip()
        if not address:
            continue
        try:
            validate_email(address)
            if len(address) > 254:
                raise ValidationError(_("An e-mail address has at most 254 characters."))
        except ValidationError as exc:
            messages.append(_("%(value)s: %(message)s") % {"value": address, "message": exc.messages[0]})
            continue
        if address.lower() in seen:
            continue
        seen.add(address.lower())
        cleaned.append(address)
    if len(cleaned) > MAX_CONTACT_ITEMS:
        messages.append(
            _("A contact person can have at most %(count)d e-mail addresses.") % {"count": MAX_CONTACT_ITEMS}
        )
    if messages:
        raise ValidationError({"emails": messages})
    return cleaned


def _validate_contact(contact: ContactPerson, phones, emails) -> tuple[list | None, list | None]:
    contact.name = (contact.name or "").strip()
    contact.title = (contact.title or "").strip()
    errors: dict[str, list] = {}
    if contact.customer.kind != CustomerKind.COMPANY:
        errors["__all__"] = [_("Only company customers have contact persons.")]
    try:
        _full_clean(contact)
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, []).extend(messages)
    cleaned_phones = cleaned_emails = None
    try:
        cleaned_phones = None if phones is None else _clean_contact_phones(phones)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    try:
        cleaned_emails = None if emails is None else _clean_contact_emails(emails)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    return cleaned_phones, cleaned_emails


def _write_contact(contact: ContactPerson, phones: list | None, emails: list | None) -> None:
    if contact.is_primary:
        ContactPerson.objects.filter(customer=contact.customer_id, is_primary=True).exclude(
            pk=contact.pk
        ).update(is_primary=False)
    contact.save()
    if phones is not None:
        CustomerPhone.objects.filter(contact=contact).delete()
        for index, phone in enumerate(phones):
            CustomerPhone.objects.create(
                customer_id=contact.customer_id,
                contact=contact,
                number=phone["number"],
                label=phone["label"],
                is_primary=index == 0,
            )
    if emails is not None:
        CustomerEmail.objects.filter(contact=contact).delete()
        for index, address in enumerate(emails):
            CustomerEmail.objects.create(
                customer_id=contact.customer_id, contact=contact, address=address, is_primary=index == 0
            )


@transaction.atomic
def contact_create(
    *,
    actor,
    customer: Customer,
    name: str,
    title: str = "",
    notes: str = "",
    is_primary: bool = False,
    phones: Iterable = (),
    emails: Iterable = (),
) -> ContactPerson:
    """Add a contact person to a company customer. ``phones``: numbers or dicts (number, label);
    ``emails``: addresses or dicts (address). They become CustomerPhone/CustomerEmail rows of the
    customer with ``contact`` set."""
    _require(actor, "customers.add_contactperson", customer)
    contact = ContactPerson(customer=customer, name=name, title=title, notes=notes, is_primary=is_primary)
    phones_clean, emails_clean = _validate_contact(contact, list(phones), list(emails))
    if not ContactPerson.objects.filter(customer=customer).exists():
        contact.is_primary = True
    _write_contact(contact, phones_clean, emails_clean)
    audit_model_create(actor=actor, instance=contact)
    return contact


@transaction.atomic
def contact_update(*, actor, contact: ContactPerson, phones=None, emails=None, **fields) -> ContactPerson:
    """Change a contact person; ``phones`` / ``emails`` replace the set when given (None keeps it)."""
    unknown = set(fields) - {"name", "title", "notes", "is_primary"}
    if unknown:
        raise TypeError(f"Unknown contact fields: {', '.join(sorted(unknown))}")
    _require(actor, "customers.change_contactperson", contact.customer)
    before = snapshot(contact)
    for name, value in fields.items():
        setattr(contact, name, value)
    phones_clean, emails_clean = _validate_contact(
        contact, None if phones is None else list(phones), None if emails is None else list(emails)
    )
    _write_contact(contact, phones_clean, emails_clean)
    changes = diff(before, snapshot(contact), ContactPerson)
    if phones_clean is not None:
        changes["phones"] = CHANGED
    if emails_clean is not None:
        changes["emails"] = CHANGED
    audit_record(action=AuditAction.UPDATE, actor=actor, obj=contact, changes=changes)
    return contact


@transaction.atomic
def contact_delete(*, actor, contact: ContactPerson) -> None:
    """Delete a contact person with their phones and e-mails (follow-ups keep their text)."""
    _require(actor, "customers.delete_contactperson", contact.customer)
    audit_model_delete(actor=actor, instance=contact)
    contact.delete()


# Addresses ----------------------------------------------------------------------------------------

ADDRESS_FIELDS = (
    "recipient",
    "phone",
    "region",
    "street",
    "postcode",
    "is_default_shipping",
    "is_default_billing",
)


def _region(value) -> Region | None:
    region = region_selectors.get_region(value)
    if region is None:
        raise ValidationError({"region": [_("Choose a region from the list.")]})
    if not region_selectors.is_leaf(region.code):
        raise ValidationError({"region": [_("Choose the district (or a city without districts).")]})
    return region


def _validate_address(address: Address, *, customer_checked: bool = False) -> None:
    """``customer_checked``: the caller has just read the customer, so the existence check of the
    foreign key (one query per address in ``full_clean``) is skipped."""
    address.recipient = (address.recipient or "").strip()
    address.street = (address.street or "").strip()
    address.postcode = (address.postcode or "").strip()
    address.phone = (address.phone or "").strip()
    errors: dict[str, list] = {}
    if not address.street:
        errors["street"] = [_("Enter the street address.")]
    elif len(address.street) > 300:
        errors["street"] = [_("The street address has at most 300 characters.")]
    try:
        _full_clean(address, exclude=["region", "customer"] if customer_checked else ["region"])
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationError(errors)


def _save_address_defaults(address: Address, *, shipping: bool, billing: bool) -> None:
    """Save ``address``; the defaults it takes are cleared on the customer's other addresses first,
    and a customer with addresses always has exactly one default of each kind."""
    others = Address.objects.filter(customer=address.customer_id).exclude(pk=address.pk)
    if not others.filter(is_default_shipping=True).exists():
        shipping = True
    if not others.filter(is_default_billing=True).exists():
        billing = True
    if shipping:
        others.filter(is_default_shipping=True).update(is_default_shipping=False)
    if billing:
        others.filter(is_default_billing=True).update(is_default_billing=False)
    address.is_default_shipping = shipping
    address.is_default_billing = billing
    address.save()


@transaction.atomic
def address_create(
    *,
    actor,
    customer: Customer,
    region,
    street: str,
    recipient: str = "",
    phone: str = "",
    postcode: str = "",
    is_default_shipping: bool = False,
    is_default_billing: bool = False,
) -> Address:
    """Add an address; the first one becomes the default for shipping and billing. The customer's
    province and city follow the default shipping address."""
    _require(actor, "customers.add_address", customer)
    errors: dict[str, list] = {}
    try:
        region = _region(region)
    except ValidationError as exc:
        errors.update(exc.message_dict)
        region = None
    address = Address(
        customer=customer, recipient=recipient, phone=phone, region=region, street=street, postcode=postcode
    )
    try:
        _validate_address(address)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    _save_address_defaults(address, shipping=bool(is_default_shipping), billing=bool(is_default_billing))
    records.refresh_region(customer)
    audit_model_create(actor=actor, instance=address)
    return address


def address_create_many(*, actor, items: list[tuple[Customer, dict]]) -> list:
    """Add many addresses at once (the order import's buyers); for each ``(customer, fields)`` item
    (the ``address_create`` fields) the new address or the ``ValidationError`` that refused it.

    The rules are ``address_create``'s. A customer's first address goes through ``address_create``
    itself (it becomes the default and sets the customer's region); the others are added, not
    default, with one multi-row INSERT and one batched audit append. PermissionDenied unless the
    actor may add addresses; an item of a customer the actor does not see gets a PermissionDenied
    as its result. Call inside a transaction.
    """
    if not items:
        return []
    if actor is None or not actor.is_authenticated or not actor.has_perm("customers.add_address"):
        raise PermissionDenied(_("You do not have permission to do this."))
    ids = {customer.pk for customer, _fields in items}
    visible = set(
        visibility.visible_to(
            actor, Customer.objects.filter(pk__in=ids, deleted_at__isnull=True)
        ).values_list("pk", flat=True)
    )
    with_addresses = set(
        Address.objects.filter(customer_id__in=ids).values_list("customer_id", flat=True).distinct()
    )
    results: list = []
    batch: list[Address] = []
    for customer, fields in items:
        if customer.pk not in visible:
            results.append(PermissionDenied(_("You do not have permission to do this.")))
            continue
        if customer.pk not in with_addresses:
            try:
                with transaction.atomic():
                    results.append(address_create(actor=actor, customer=customer, **fields))
                with_addresses.add(customer.pk)
            except ValidationError as exc:
                results.append(exc)
            continue
        try:
            region = _region(fields.get("region"))
            address = Address(
                customer=customer,
                recipient=fields.get("recipient", ""),
                phone=fields.get("phone", ""),
                region=region,
                street=fields.get("street", ""),
                postcode=fields.get("postcode", ""),
            )
            _validate_address(address, customer_checked=True)
        except ValidationError as exc:
            results.append(exc)
            continue
        results.append(address)
        batch.append(address)
    if batch:
        insert_instances(Address, batch)
        audit_record_many(
            {
                "action": AuditAction.CREATE,
                "actor": actor,
                "obj": address,
                "changes": creation_changes(address),
            }
            for address in batch
        )
    return results


@transaction.atomic
def address_update(*, actor, address: Address, **fields) -> Address:
    """Change an address. A default cannot be unset directly: make another address the default."""
    unknown = set(fields) - set(ADDRESS_FIELDS)
    if unknown:
        raise TypeError(f"Unknown address fields: {', '.join(sorted(unknown))}")
    _require(actor, "customers.change_address", address.customer)
    before = snapshot(address)
    errors: dict[str, list] = {}
    shipping = bool(fields.pop("is_default_shipping", address.is_default_shipping))
    billing = bool(fields.pop("is_default_billing", address.is_default_billing))
    if address.is_default_shipping and not shipping:
        errors["is_default_shipping"] = [_("Make another address the default shipping address instead.")]
    if address.is_default_billing and not billing:
        errors["is_default_billing"] = [_("Make another address the default billing address instead.")]
    if "region" in fields:
        try:
            fields["region"] = _region(fields["region"])
        except ValidationError as exc:
            errors.update(exc.message_dict)
            fields.pop("region")
    for name, value in fields.items():
        setattr(address, name, value)
    try:
        _validate_address(address)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    _save_address_defaults(address, shipping=shipping, billing=billing)
    records.refresh_region(address.customer)
    audit_record(
        action=AuditAction.UPDATE, actor=actor, obj=address, changes=diff(before, snapshot(address), Address)
    )
    return address


@transaction.atomic
def address_delete(*, actor, address: Address) -> None:
    """Delete an address; the defaults it held pass to the oldest remaining address."""
    customer = address.customer
    _require(actor, "customers.delete_address", customer)
    was_shipping, was_billing = address.is_default_shipping, address.is_default_billing
    audit_model_delete(actor=actor, instance=address)
    address.delete()
    heir = Address.objects.filter(customer=customer).order_by("pk").first()
    if heir is not None and (was_shipping or was_billing):
        _save_address_defaults(
            heir,
            shipping=heir.is_default_shipping or was_shipping,
            billing=heir.is_default_billing or was_billing,
        )
    records.refresh_region(customer)


# Marketing consent (PIPL) -------------------------------------------------------------------------


@transaction.atomic
def consent_grant(
    *,
    actor,
    customer: Customer,
    channel: str,
    source: str,
    granted_at: datetime.datetime | None = None,
) -> MarketingConsent:
    """Record that the customer agreed to marketing on ``channel``, when and where (``source``)."""
    _require(actor, "customers.add_marketingconsent", customer)
    consent = MarketingConsent(
        customer=customer,
        channel=channel,
        source=(source or "").strip(),
        granted_at=_aware(granted_at) or timezone.now(),
        recorded_by=actor,
    )
    errors: dict[str, list] = {}
    if consent.granted_at > timezone.now() + FUTURE_TOLERANCE:
        errors["granted_at"] = [_("Consent cannot be granted in the future.")]
    try:
        _full_clean(consent)
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, []).extend(messages)
    if (
        not errors
        and MarketingConsent.objects.filter(
            customer=customer, channel=channel, withdrawn_at__isnull=True
        ).exists()
    ):
        errors["channel"] = [_("The customer already consents to marketing on this channel.")]
    if errors:
        raise ValidationError(errors)
    consent.save()
    audit_model_create(actor=actor, instance=consent)
    return consent


@transaction.atomic
def consent_withdraw(*, actor, consent: MarketingConsent) -> MarketingConsent:
    """Record the withdrawal of a consent (kept for the record, never deleted)."""
    _require(actor, "customers.change_marketingconsent", consent.customer)
    # Lock the row: two clerks withdrawing at once must not both succeed.
    locked = MarketingConsent.objects.select_for_update().get(pk=consent.pk)
    if locked.withdrawn_at is not None:
        raise ValidationError(_("This consent has already been withdrawn."), code="withdrawn")
    before = snapshot(locked)
    consent.withdrawn_at = timezone.now()
    consent.withdrawn_by = actor
    consent.save(update_fields=["withdrawn_at", "withdrawn_by"])
    audit_record(
        action=AuditAction.UPDATE,
        actor=actor,
        obj=consent,
        changes=diff(before, snapshot(consent), MarketingConsent),
        message="Consent withdrawn",
    )
    return consent


# Sensitive values -----------------------------------------------------------------------------------

# field -> (model, attribute, needs a row id)
REVEALABLE = {
    "phone": (CustomerPhone, "number"),
    "email": (CustomerEmail, "address"),
    "street": (Address, "street"),
    "address_phone": (Address, "phone"),
}


@transaction.atomic
def customer_reveal_sensitive(*, actor, customer: Customer, field: str) -> str:
    """The plaintext of one sensitive value of ``customer``, for holders of
    ``accounts.view_sensitive_data`` only; every reveal is written to the audit ledger.

    ``field``: "wechat", or "<kind>:<row id>" with kind phone, email (rows of the customer or its
    contact persons), street or address_phone (an address of the customer).
    """
    if not can_view_sensitive(actor):
        raise PermissionDenied(_("You do not have permission to see this in full."))
    if customer.is_deleted or not visibility.is_visible(actor, customer):
        raise PermissionDenied(_("You do not have permission to do this."))
    if field == "wechat":
        value = customer.wechat_id
    else:
        kind, _sep, row_id = (field or "").partition(":")
        if kind not in REVEALABLE or not row_id.isdigit():
            raise ValidationError(_("Unknown field."), code="invalid_field")
        model, attribute = REVEALABLE[kind]
        row = model.objects.filter(customer=customer, pk=int(row_id)).first()
        if row is None:
            raise ValidationError(_("Unknown field."), code="invalid_field")
        value = getattr(row, attribute)
    audit_view_sensitive(actor=actor, obj=customer, fields=[field])
    return value or ""


# Personal-data export (PIPL) -------------------------------------------------------------------------


def customer_personal_data_export(*, actor, customer: Customer) -> tuple[str, bytes]:
    """Everything held about ``customer`` as an .xlsx (one sheet per kind of record), in full: it
    answers the data subject's own request. Requires ``accounts.view_sensitive_data``; audited."""
    if not can_view_sensitive(actor) or not actor.has_perm("customers.view_customer"):
        raise PermissionDenied(_("You do not have permission to export personal data."))
    if customer.is_deleted or not visibility.is_visible(actor, customer):
        raise PermissionDenied(_("You do not have permission to do this."))
    with transaction.atomic():
        content, count = _personal_data_workbook(customer=customer, user=actor)
        # An export entry (as audit_export writes it) that names the customer, so it shows on the
        # customer's timeline.
        audit_record(
            action=AuditAction.EXPORT,
            actor=actor,
            obj=customer,
            changes={"count": count, "filters": {"customer": customer.pk}},
            message=f"Personal data export of customer {customer.pk}",
        )
    filename = f"customer-{customer.pk}-personal-data-{timezone.localdate():%Y%m%d}.xlsx"
    return filename, content


def _yes_no(value: bool) -> str:
    return _("Yes") if value else _("No")


def _user(user) -> str:
    if user is None:
        return ""
    return getattr(user, "display_name", "") or user.get_username()


def _personal_data_sheets(customer: Customer, user) -> list[tuple[str, list[str], list[list]]]:
    """(title, headers, rows) for each kind of record held about the customer."""
    from ..selectors.detail import customer_timeline

    field = lambda model, name: str(model._meta.get_field(name).verbose_name)  # noqa: E731
    c = Customer.objects.select_related("owner", "team", "level", "pool", "province", "city").get(
        pk=customer.pk
    )
    profile = [
        [_("ID"), c.pk],
        [field(Customer, "kind"), c.get_kind_display()],
        [field(Customer, "name"), c.name],
        [field(Customer, "gender"), c.get_gender_display()],
        [field(Customer, "birthday"), c.birthday],
        [field(Customer, "level"), c.level or ""],
        [field(Customer, "stage"), c.get_stage_display()],
        [field(Customer, "source"), c.get_source_display()],
        [field(Customer, "owner"), _user(c.owner)],
        [field(Customer, "team"), c.team or ""],
        [field(Customer, "tags"), ", ".join(t.name for t in c.tags.all())],
        [field(Customer, "notes"), c.notes],
        [field(Customer, "wechat_id"), c.wechat_id],
        [field(Customer, "pool"), c.pool or ""],
        [field(Customer, "province"), c.province or ""],
        [field(Customer, "city"), c.city or ""],
        [field(Customer, "owned_since"), c.owned_since],
        [field(Customer, "last_follow_up_at"), c.last_follow_up_at],
        [field(Customer, "last_order_at"), c.last_order_at],
        [field(Customer, "created_at"), c.created_at],
        [field(Customer, "updated_at"), c.updated_at],
    ]
    phones = CustomerPhone.objects.filter(customer=c).select_related("contact")
    emails = CustomerEmail.objects.filter(customer=c).select_related("contact")
    addresses = Address.objects.filter(customer=c).select_related("region")
    sheets = [
        (_("Customer"), [_("Field"), _("Value")], profile),
        (
            _("Phones"),
            [
                field(CustomerPhone, "number"),
                field(CustomerPhone, "label"),
                field(CustomerPhone, "is_primary"),
                field(CustomerPhone, "contact"),
            ],
            [[p.number, p.get_label_display(), _yes_no(p.is_primary), p.contact or ""] for p in phones],
        ),
        (
            _("E-mail addresses"),
            [
                field(CustomerEmail, "address"),
                field(CustomerEmail, "is_primary"),
                field(CustomerEmail, "contact"),
            ],
            [[e.address, _yes_no(e.is_primary), e.contact or ""] for e in emails],
        ),
        (
            _("Platform accounts"),
            [field(PlatformAccount, n) for n in ("platform", "account_id", "nickname")],
            [[a.get_platform_display(), a.account_id, a.nickname] for a in c.platform_accounts.all()],
        ),
        (
            _("Addresses"),
            [
                field(Address, n)
                for n in (
                    "recipient",
                    "phone",
                    "region",
                    "street",
                    "postcode",
                    "is_default_shipping",
                    "is_default_billing",
                    "created_at",
                )
            ],
            [
                [
                    a.recipient,
                    a.phone,
                    a.region.full_name if a.region_id else "",
                    a.street,
                    a.postcode,
                    _yes_no(a.is_default_shipping),
                    _yes_no(a.is_default_billing),
                    a.created_at,
                ]
                for a in addresses
            ],
        ),
        (
            _("Contact persons"),
            [field(ContactPerson, n) for n in ("name", "title", "notes", "is_primary", "created_at")],
            [
                [p.name, p.title, p.notes, _yes_no(p.is_primary), p.created_at]
                for p in ContactPerson.objects.filter(customer=c)
            ],
        ),
        (
            _("Follow-ups"),
            [
                field(FollowUp, n)
                for n in ("occurred_at", "method", "contact", "content", "next_step", "next_date", "author")
            ],
            [
                [
                    f.occurred_at,
                    f.get_method_display(),
                    f.contact or "",
                    f.content,
                    f.next_step,
                    f.next_date,
                    _user(f.author),
                ]
                for f in FollowUp.objects.filter(customer=c).select_related("contact", "author")
            ],
        ),
        (
            _("Feedback"),
            [
                field(Feedback, n)
                for n in ("received_at", "kind", "channel", "rating", "content", "recorded_by")
            ],
            [
                [
                    f.received_at,
                    f.get_kind_display(),
                    f.get_channel_display(),
                    f.rating,
                    f.content,
                    _user(f.recorded_by),
                ]
                for f in Feedback.objects.filter(customer=c).select_related("recorded_by")
            ],
        ),
        (
            _("Marketing consent"),
            [
                field(MarketingConsent, n)
                for n in ("channel", "granted_at", "source", "recorded_by", "withdrawn_at", "withdrawn_by")
            ],
            [
                [
                    m.get_channel_display(),
                    m.granted_at,
                    m.source,
                    _user(m.recorded_by),
                    m.withdrawn_at,
                    _user(m.withdrawn_by),
                ]
                for m in MarketingConsent.objects.filter(customer=c).select_related(
                    "recorded_by", "withdrawn_by"
                )
            ],
        ),
        (
            _("Pool history"),
            [field(PoolEvent, n) for n in ("created_at", "action", "pool", "user", "reason")],
            [
                [e.created_at, e.get_action_display(), e.pool or "", _user(e.user), e.reason]
                for e in PoolEvent.objects.filter(customer=c).select_related("pool", "user")
            ],
        ),
        (
            _("Timeline"),
            [_("When"), _("Event"), _("Details")],
            [[i.when, i.title, i.body] for i in customer_timeline(customer=c, user=user, limit=10_000)],
        ),
    ]
    return sheets


def _personal_data_workbook(*, customer: Customer, user) -> tuple[bytes, int]:
    """The .xlsx bytes and the number of data rows written."""
    sheets = _personal_data_sheets(customer, user)
    wb = None
    count = 0
    for title, headers, rows in sheets:
        if wb is None:
            wb, ws = xlsx.new_workbook(title)
        else:
            ws = wb.create_sheet(title=str(title)[:31])
        xlsx.append_row(ws, headers)
        for row in rows:
            xlsx.append_row(ws, row)
            count += 1
    return xlsx.workbook_bytes(wb), count
