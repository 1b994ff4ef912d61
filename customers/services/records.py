"""Writes of customer records (R5.1.1, R5.1.2, R7.1.1, R7.2.4).

One sanctioned function per state change: create, update, soft delete, restore, assign, tags.
Each validates everything first (a ``ValidationError`` keyed by field name, translated, so a form
can show each message next to its field), then writes inside one transaction — all or nothing —
and appends the audit entry last. Sensitive values (phones, e-mails, WeChat ID, streets) are
recorded in the ledger as "changed", never with their values.

Lists (phones, emails, platform_accounts, addresses) are sequences of dicts::

    phones=[{"number": "13812345678", "label": "mobile", "is_primary": True}]
    emails=[{"address": "a@example.com", "is_primary": True}]
    platform_accounts=[{"platform": "tmall", "account_id": "tb_123", "nickname": "小明"}]
    addresses=[{"recipient": "张三", "phone": "", "region": "330106", "street": "文三路 1 号",
                "postcode": "310000", "is_default_shipping": True, "is_default_billing": False}]

A dict may carry ``"id"`` (an existing row of this customer) to update that row in place; on
``customer_update`` a list that is given replaces the whole set (rows not listed are deleted), and
needs the permissions of what it does to the rows: ``customers.add_customerphone`` for a new
phone, ``change_`` for a changed one, ``delete_`` for a dropped one (PermissionDenied otherwise;
``change_customer`` alone covers only the customer's own fields).

The first address becomes the default shipping and billing address when none is chosen (as
``activities.address_create`` does).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _

from crm.core import visibility
from crm.core.audit.models import AuditAction
from crm.core.audit.services import CHANGED, audit_record, diff, is_sensitive, snapshot
from crm.core.crypto import normalize_email, normalize_phone
from crm.core.regions import selectors as region_selectors
from crm.core.regions.models import Region
from crm.core.validators import validate_email, validate_phone

from ..models import (
    Address,
    Customer,
    CustomerEmail,
    CustomerKind,
    CustomerLevel,
    CustomerPhone,
    CustomerPool,
    Gender,
    PhoneLabel,
    Platform,
    PlatformAccount,
    Source,
    Stage,
    Tag,
)
from . import search

__all__ = [
    "EARLIEST_BIRTHDAY",
    "assignable_users",
    "can_assign_to",
    "customer_assign",
    "customer_create",
    "customer_delete",
    "customer_restore",
    "customer_set_tags",
    "customer_update",
    "impossible_birthday_message",
    "may_edit_list",
    "refresh_region",
]

EARLIEST_BIRTHDAY = datetime.date(1900, 1, 1)
MAX_NAME = 200
MAX_NOTES = 5000
MAX_WECHAT_ID = 64
MAX_EMAIL = 254
MAX_ACCOUNT_ID = 128
MAX_NICKNAME = 128
MAX_RECIPIENT = 100
MAX_STREET = 300
MAX_ITEMS = 50  # per list: more phones/addresses than this is a mistake or an attack

SCALAR_FIELDS = ("kind", "name", "gender", "birthday", "level", "stage", "source", "notes", "wechat_id")
LIST_FIELDS = ("phones", "emails", "platform_accounts", "addresses")
UPDATABLE = frozenset({*SCALAR_FIELDS, *LIST_FIELDS, "owner", "team", "tags", "pool"})

_UNSET = object()


# Who may own what ---------------------------------------------------------------------------------


def assignable_users(actor) -> QuerySet:
    """Users ``actor`` may make the owner of a customer.

    Everyone active for an all-records scope (administrators); for a manager with the assign
    permission, their own team(s), their direct reports and themselves; otherwise only themselves.
    """
    users = get_user_model()._default_manager.filter(is_active=True)
    if actor is None or not actor.is_authenticated or not actor.is_active:
        return users.none()
    if not actor.has_perm("customers.assign_customer"):
        return users.filter(pk=actor.pk)
    scope = visibility.scope_for(actor)
    if scope is visibility.Scope.ALL:
        return users
    teams = visibility.team_ids_for(actor)
    return users.filter(Q(pk=actor.pk) | Q(manager=actor) | Q(team__in=teams))


def can_assign_to(actor, owner) -> bool:
    if owner is None:
        return False
    if owner.pk == getattr(actor, "pk", None):
        return owner.is_active
    return assignable_users(actor).filter(pk=owner.pk).exists()


# Validation helpers -------------------------------------------------------------------------------


class _Errors:
    """Collects messages per field; ``raise_if_any`` raises one ValidationError holding them all."""

    def __init__(self):
        self.by_field: dict[str, list[ValidationError]] = {}

    def add(self, field: str, message: str, code: str = "invalid") -> None:
        self.by_field.setdefault(field, []).append(ValidationError(message, code=code))

    def raise_if_any(self) -> None:
        if self.by_field:
            raise ValidationError(self.by_field)


def _row_message(kind: str, row: int, message) -> str:
    messages = {
        "phones": _("Phone %(row)d: %(error)s"),
        "emails": _("E-mail %(row)d: %(error)s"),
        "platform_accounts": _("Platform account %(row)d: %(error)s"),
        "addresses": _("Address %(row)d: %(error)s"),
    }
    return messages[kind] % {"row": row, "error": message}


def _too_long(limit: int) -> str:
    return _("Use at most %(limit)d characters.") % {"limit": limit}


def _text(value) -> str:
    return "" if value is None else str(value).strip()


def _check_choice(errors: _Errors, field: str, value, choices) -> None:
    if value not in choices.values:
        errors.add(field, _("Choose a valid option."), code="invalid_choice")


def impossible_birthday_message() -> str:
    return _("This birthday is impossible: it must be after 1900-01-01 and not in the future.")


def _coerce_birthday(errors: _Errors, value):
    if value in (None, ""):
        return None
    if isinstance(value, datetime.datetime):
        value = value.date()
    if isinstance(value, str):
        try:
            parsed = parse_date(value.strip())
        except ValueError:
            parsed = None
        if parsed is None:
            errors.add("birthday", _("Enter a date such as 1990-05-17."), code="invalid_date")
            return None
        value = parsed
    if not isinstance(value, datetime.date):
        errors.add("birthday", _("Enter a date such as 1990-05-17."), code="invalid_date")
        return None
    if value > timezone.localdate() or value < EARLIEST_BIRTHDAY:
        errors.add("birthday", impossible_birthday_message(), code="impossible_birthday")
        return None
    return value


def _coerce_level(errors: _Errors, value):
    if value in (None, ""):
        return None
    if isinstance(value, CustomerLevel):
        return value
    level = CustomerLevel.objects.filter(Q(code=str(value)) | Q(pk=int(value) if str(value).isdigit() else 0))
    level = level.first()
    if level is None:
        errors.add("level", _("Unknown customer level."), code="unknown_level")
    return level


def _coerce_region(value):
    if isinstance(value, Region):
        return value
    return region_selectors.get_region(_text(value)) if value not in (None, "") else None


def _clean_phones(errors: _Errors, items) -> list[dict]:
    cleaned, seen, primaries = [], set(), 0
    for row, item in enumerate(items or (), start=1):
        number = _text(item.get("number"))
        label = item.get("label") or PhoneLabel.MOBILE
        if not number:
            errors.add("phones", _row_message("phones", row, _("Enter a phone number.")), code="required")
            continue
        try:
            validate_phone(number)
        except ValidationError as exc:
            errors.add("phones", _row_message("phones", row, exc.messages[0]), code="invalid_phone")
            continue
        if label not in PhoneLabel.values:
            errors.add(
                "phones", _row_message("phones", row, _("Choose a valid option.")), code="invalid_choice"
            )
            continue
        key = normalize_phone(number)
        if key in seen:
            errors.add(
                "phones", _row_message("phones", row, _("This number is listed twice.")), code="duplicate"
            )
            continue
        seen.add(key)
        primaries += bool(item.get("is_primary"))
        cleaned.append(
            {
                "id": item.get("id"),
                "number": number,
                "label": label,
                "is_primary": bool(item.get("is_primary")),
            }
        )
    if primaries > 1:
        errors.add("phones", _("Mark at most one phone as primary."), code="several_primary")
    elif cleaned and not primaries:
        cleaned[0]["is_primary"] = True
    return cleaned


def _clean_emails(errors: _Errors, items) -> list[dict]:
    cleaned, seen, primaries = [], set(), 0
    for row, item in enumerate(items or (), start=1):
        address = _text(item.get("address"))
        if not address:
            errors.add("emails", _row_message("emails", row, _("Enter an e-mail address.")), code="required")
            continue
        if len(address) > MAX_EMAIL:
            errors.add("emails", _row_message("emails", row, _too_long(MAX_EMAIL)), code="max_length")
            continue
        try:
            validate_email(address)
        except ValidationError as exc:
            errors.add("emails", _row_message("emails", row, exc.messages[0]), code="invalid_email")
            continue
        key = normalize_email(address)
        if key in seen:
            errors.add(
                "emails", _row_message("emails", row, _("This address is listed twice.")), code="duplicate"
            )
            continue
        seen.add(key)
        primaries += bool(item.get("is_primary"))
        cleaned.append({"id": item.get("id"), "address": address, "is_primary": bool(item.get("is_primary"))})
    if primaries > 1:
        errors.add("emails", _("Mark at most one e-mail address as primary."), code="several_primary")
    elif cleaned and not primaries:
        cleaned[0]["is_primary"] = True
    return cleaned


def _duplicate_account_message(platform: str) -> str:
    return _("This %(platform)s account already belongs to another customer.") % {
        "platform": Platform(platform).label
    }


def _clean_accounts(errors: _Errors, items, *, customer: Customer | None) -> list[dict]:
    cleaned, seen = [], set()
    for row, item in enumerate(items or (), start=1):
        platform = _text(item.get("platform"))
        account_id = _text(item.get("account_id"))
        nickname = _text(item.get("nickname"))
        problem = None
        if platform not in Platform.values:
            problem = _("Choose a valid platform.")
        elif not account_id:
            problem = _("Enter the account ID.")
        elif len(account_id) > MAX_ACCOUNT_ID:
            problem = _too_long(MAX_ACCOUNT_ID)
        elif len(nickname) > MAX_NICKNAME:
            problem = _too_long(MAX_NICKNAME)
        elif (platform, account_id) in seen:
            problem = _("This account is listed twice.")
        else:
            others = PlatformAccount.objects.filter(platform=platform, account_id=account_id)
            if customer is not None and customer.pk:
                others = others.exclude(customer=customer)
            if others.exists():
                problem = _duplicate_account_message(platform)
        if problem:
            errors.add("platform_accounts", _row_message("platform_accounts", row, problem), code="invalid")
            continue
        seen.add((platform, account_id))
        cleaned.append(
            {"id": item.get("id"), "platform": platform, "account_id": account_id, "nickname": nickname}
        )
    return cleaned


def _clean_addresses(errors: _Errors, items) -> list[dict]:
    cleaned, shipping, billing = [], 0, 0
    for row, item in enumerate(items or (), start=1):
        region = _coerce_region(item.get("region"))
        recipient = _text(item.get("recipient"))
        phone = _text(item.get("phone"))
        street = _text(item.get("street"))
        postcode = _text(item.get("postcode"))
        problem = None
        if region is None:
            problem = _("Unknown region: choose a province, city and district from the lists.")
        elif not region_selectors.is_leaf(region.code):
            problem = _("Choose a complete region: a district, or a city that has no districts.")
        elif not street:
            problem = _("Enter the street address.")
        elif len(street) > MAX_STREET or len(recipient) > MAX_RECIPIENT:
            problem = _too_long(MAX_STREET if len(street) > MAX_STREET else MAX_RECIPIENT)
        elif postcode and not (len(postcode) == 6 and postcode.isdigit()):
            problem = _("A postcode has six digits.")
        else:
            try:
                validate_phone(phone)
            except ValidationError as exc:
                problem = exc.messages[0]
        if problem:
            errors.add("addresses", _row_message("addresses", row, problem), code="invalid")
            continue
        shipping += bool(item.get("is_default_shipping"))
        billing += bool(item.get("is_default_billing"))
        cleaned.append(
            {
                "id": item.get("id"),
                "recipient": recipient,
                "phone": phone,
                "region": region,
                "street": street,
                "postcode": postcode,
                "is_default_shipping": bool(item.get("is_default_shipping")),
                "is_default_billing": bool(item.get("is_default_billing")),
            }
        )
    if shipping > 1:
        errors.add("addresses", _("Choose at most one default shipping address."), code="several_default")
    if billing > 1:
        errors.add("addresses", _("Choose at most one default billing address."), code="several_default")
    if cleaned and not shipping:
        cleaned[0]["is_default_shipping"] = True
    if cleaned and not billing:
        cleaned[0]["is_default_billing"] = True
    return cleaned


def _coerce_tags(errors: _Errors, actor, values) -> list[Tag]:
    """Tags given as Tag objects, primary keys or names (unknown names are created for users who
    may add tags)."""
    tags: dict[int, Tag] = {}
    names, pks = [], []
    for value in values or ():
        if isinstance(value, Tag):
            tags[value.pk] = value
        elif isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            pks.append(int(value))
        elif _text(value):
            names.append(_text(value))
    if pks:
        found = {t.pk: t for t in Tag.objects.filter(pk__in=pks)}
        if len(found) != len(set(pks)):
            errors.add("tags", _("Unknown tag."), code="unknown_tag")
        tags.update(found)
    if names:
        existing = {t.name: t for t in Tag.objects.filter(name__in=names)}
        for name in names:
            if name in existing:
                tags[existing[name].pk] = existing[name]
            elif len(name) > Tag._meta.get_field("name").max_length:
                errors.add("tags", _too_long(Tag._meta.get_field("name").max_length), code="max_length")
            elif actor is None or not actor.has_perm("customers.add_tag"):
                errors.add("tags", _("Unknown tag: %(name)s") % {"name": name}, code="unknown_tag")
            else:
                tag = Tag.objects.create(name=name)
                existing[name] = tags[tag.pk] = tag
    return list(tags.values())


def _clean_scalars(errors: _Errors, values: dict) -> dict:
    cleaned = {}
    if "name" in values:
        name = _text(values["name"])
        if not name:
            errors.add("name", _("Enter the customer's name."), code="required")
        elif len(name) > MAX_NAME:
            errors.add("name", _too_long(MAX_NAME), code="max_length")
        cleaned["name"] = name
    for field, choices in (("kind", CustomerKind), ("gender", Gender), ("stage", Stage), ("source", Source)):
        if field in values:
            _check_choice(errors, field, values[field], choices)
            cleaned[field] = values[field]
    if "birthday" in values:
        cleaned["birthday"] = _coerce_birthday(errors, values["birthday"])
    if "level" in values:
        cleaned["level"] = _coerce_level(errors, values["level"])
    if "notes" in values:
        notes = _text(values["notes"])
        if len(notes) > MAX_NOTES:
            errors.add("notes", _too_long(MAX_NOTES), code="max_length")
        cleaned["notes"] = notes
    if "wechat_id" in values:
        wechat_id = _text(values["wechat_id"])
        if len(wechat_id) > MAX_WECHAT_ID:
            errors.add("wechat_id", _too_long(MAX_WECHAT_ID), code="max_length")
        cleaned["wechat_id"] = wechat_id
    return cleaned


def _clean_lists(errors: _Errors, values: dict, *, customer: Customer | None) -> dict:
    cleaned = {}
    cleaners = {
        "phones": _clean_phones,
        "emails": _clean_emails,
        "addresses": _clean_addresses,
    }
    for field in LIST_FIELDS:
        if field not in values:
            continue
        items = list(values[field] or ())
        if len(items) > MAX_ITEMS:
            errors.add(field, _("At most %(limit)d entries.") % {"limit": MAX_ITEMS}, code="too_many")
            continue
        if any(not isinstance(item, dict) for item in items):
            raise TypeError(f"{field} must be a sequence of dicts")
        if field == "platform_accounts":
            cleaned[field] = _clean_accounts(errors, items, customer=customer)
        else:
            cleaned[field] = cleaners[field](errors, items)
    return cleaned


# Writing related rows -----------------------------------------------------------------------------

_LIST_MODELS = {
    "phones": (CustomerPhone, ("number", "label", "is_primary")),
    "emails": (CustomerEmail, ("address", "is_primary")),
    "platform_accounts": (PlatformAccount, ("platform", "account_id", "nickname")),
    "addresses": (
        Address,
        ("recipient", "phone", "region", "street", "postcode", "is_default_shipping", "is_default_billing"),
    ),
}


def _list_permission(field: str, verb: str) -> str:
    model = _LIST_MODELS[field][0]
    return f"{model._meta.app_label}.{verb}_{model._meta.model_name}"


def may_edit_list(user, field: str, *, creating: bool = False) -> bool:
    """May ``user`` edit the list ``field`` (phones, emails, platform_accounts, addresses) of a
    customer as a whole: add, change and delete its rows (only add for a new customer)?"""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    verbs = ("add",) if creating else ("add", "change", "delete")
    return all(user.has_perm(_list_permission(field, verb)) for verb in verbs)


def _row_id(item: dict):
    try:
        return int(item["id"]) if item.get("id") else None
    except (TypeError, ValueError):
        return None


def _list_rows(customer: Customer, field: str) -> QuerySet:
    rows = _LIST_MODELS[field][0].objects.filter(customer=customer)
    if field in ("phones", "emails"):
        rows = rows.filter(contact__isnull=True)  # contact persons' phones are kept
    return rows


def _same(current, given) -> bool:
    if isinstance(current, bool):
        return current == bool(given)
    return _text(getattr(given, "pk", given)) == _text(current)


def _check_list_permissions(actor, customer: Customer, lists: dict) -> None:
    """PermissionDenied unless ``actor`` may do what the given lists do to the customer's rows."""
    messages = {
        "phones": _("You may not change the phone numbers of customers."),
        "emails": _("You may not change the e-mail addresses of customers."),
        "platform_accounts": _("You may not change the platform accounts of customers."),
        "addresses": _("You may not change the addresses of customers."),
    }
    for field, items in lists.items():
        attrs = _LIST_MODELS[field][1]
        existing = {row.pk: row for row in _list_rows(customer, field)}
        listed = {_row_id(item): item for item in items if _row_id(item) in existing}
        verbs = set()
        if len(listed) < len(items):
            verbs.add("add")
        if set(existing) - set(listed):
            verbs.add("delete")
        for pk, item in listed.items():
            row = existing[pk]
            current = {a: getattr(row, f"{a}_id" if a == "region" else a) for a in attrs}
            if any(a in item and not _same(current[a], item[a]) for a in attrs):
                verbs.add("change")
        if not all(actor is not None and actor.has_perm(_list_permission(field, v)) for v in verbs):
            raise PermissionDenied(messages[field])


def _signature(customer: Customer, field: str) -> list:
    """A comparable picture of one list of a customer (for "did it change" in the audit entry)."""
    model, attrs = _LIST_MODELS[field]
    rows = model.objects.filter(
        customer=customer, **({"contact__isnull": True} if field in ("phones", "emails") else {})
    )
    return sorted(
        tuple(str(getattr(r, a + "_id", None) or getattr(r, a)) for a in attrs) for r in rows.order_by("pk")
    )


def _sync_list(customer: Customer, field: str, items: list[dict]) -> None:
    """Make the customer's rows of ``field`` exactly ``items`` (matching ``id``s are updated)."""
    model, attrs = _LIST_MODELS[field]
    rows = _list_rows(customer, field)
    existing = {row.pk: row for row in rows}
    keep_ids = {int(i["id"]) for i in items if i.get("id") and int(i["id"]) in existing}
    stale = [pk for pk in existing if pk not in keep_ids]
    if stale:
        model.objects.filter(pk__in=stale).delete()
    if field == "addresses" and keep_ids:
        # Defaults are unique per customer: clear them before saving the new choice.
        Address.objects.filter(pk__in=keep_ids).update(is_default_shipping=False, is_default_billing=False)
    for item in items:
        row = existing.get(int(item["id"])) if item.get("id") and int(item["id"]) in keep_ids else None
        if row is None:
            row = model(customer=customer)
        for attr in attrs:
            setattr(row, attr, item[attr])
        row.save()


def _save_accounts(customer: Customer, items: list[dict]) -> None:
    """Platform accounts, with the unique constraint as the last line of defence (a concurrent
    writer can take the account between our check and our insert)."""
    try:
        with transaction.atomic():
            _sync_list(customer, "platform_accounts", items)
    except IntegrityError as exc:
        taken = next(
            (
                i
                for i in items
                if PlatformAccount.objects.filter(platform=i["platform"], account_id=i["account_id"])
                .exclude(customer=customer)
                .exists()
            ),
            None,
        )
        message = (
            _duplicate_account_message(taken["platform"]) if taken else _("A platform account is taken.")
        )
        raise ValidationError(
            {"platform_accounts": [ValidationError(message, code="duplicate_account")]}
        ) from exc


def _write_lists(customer: Customer, lists: dict) -> None:
    for field in ("phones", "emails", "addresses"):
        if field in lists:
            _sync_list(customer, field, lists[field])
    if "platform_accounts" in lists:
        _save_accounts(customer, lists["platform_accounts"])
    if "addresses" in lists:
        refresh_region(customer)


def refresh_region(customer: Customer) -> Customer:
    """Set the customer's province and city from the default shipping address (or the first one)."""
    address = (
        Address.objects.filter(customer=customer)
        .order_by("-is_default_shipping", "-is_default_billing", "pk")
        .only("region_id")
        .first()
    )
    path = region_selectors.region_path(address.region_id) if address else []
    province = path[0] if path else None
    city = path[1] if len(path) > 1 else None
    if (customer.province_id, customer.city_id) != (
        getattr(province, "code", None),
        getattr(city, "code", None),
    ):
        customer.province = province
        customer.city = city
        customer.save(update_fields=["province", "city", "updated_at"])
    return customer


# Auditing -----------------------------------------------------------------------------------------


def _list_changes(before: dict, after: dict) -> dict:
    changes = {}
    for field, old in before.items():
        new = after[field]
        if old == new:
            continue
        changes[field] = [old, new] if field in ("platform_accounts", "tags") else CHANGED
    return changes


def _tag_names(customer: Customer) -> list[str]:
    return sorted(customer.tags.values_list("name", flat=True))


def _creation_changes(customer: Customer) -> dict:
    changes = {}
    for name, value in snapshot(customer).items():
        if is_sensitive(Customer, name):
            if getattr(customer, name):
                changes[name] = CHANGED
        elif value not in (None, "", [], {}):
            changes[name] = [None, value]
    return changes


# Services -----------------------------------------------------------------------------------------


def _resolve_ownership(errors: _Errors, *, actor, owner, team, pool, current_owner=None):
    """Validate the owner/team/pool triple. Returns (owner, team, pool)."""
    if pool is not None and not isinstance(pool, CustomerPool):
        pool = CustomerPool.objects.filter(pk=pool).first()
        if pool is None:
            errors.add("pool", _("Unknown customer pool."), code="unknown_pool")
    if owner is not None and pool is not None:
        errors.add("pool", _("A customer in a pool has no owner."), code="owner_and_pool")
    changed = owner is not None and getattr(owner, "pk", None) != getattr(current_owner, "pk", None)
    if changed and not can_assign_to(actor, owner):
        errors.add("owner", _("You may not make this user the owner."), code="not_assignable")
    if team is _UNSET:
        team = owner.team if owner is not None else None
    return owner, team, pool


@transaction.atomic
def customer_create(
    *,
    actor,
    name: str,
    kind: str = CustomerKind.PERSON,
    gender: str = Gender.UNKNOWN,
    birthday=None,
    level=None,
    stage: str = Stage.NEW,
    source: str = Source.OTHER,
    owner=_UNSET,
    team=_UNSET,
    tags: Iterable = (),
    notes: str = "",
    wechat_id: str = "",
    phones: Sequence[dict] = (),
    emails: Sequence[dict] = (),
    platform_accounts: Sequence[dict] = (),
    addresses: Sequence[dict] = (),
    pool=None,
) -> Customer:
    """Create a customer with its contact details, accounts and addresses (all or nothing)."""
    errors = _Errors()
    scalars = _clean_scalars(
        errors,
        {
            "name": name,
            "kind": kind,
            "gender": gender,
            "birthday": birthday,
            "level": level,
            "stage": stage,
            "source": source,
            "notes": notes,
            "wechat_id": wechat_id,
        },
    )
    if scalars.get("level") is None and level in (None, ""):
        scalars["level"] = CustomerLevel.objects.filter(is_default=True).first()
    lists = _clean_lists(
        errors,
        {"phones": phones, "emails": emails, "platform_accounts": platform_accounts, "addresses": addresses},
        customer=None,
    )
    if owner is _UNSET:
        owner = None if pool is not None else actor
    owner, team, pool = _resolve_ownership(errors, actor=actor, owner=owner, team=team, pool=pool)
    tag_objects = _coerce_tags(errors, actor, tags)
    errors.raise_if_any()

    customer = Customer(
        **scalars,
        owner=owner,
        team=team,
        pool=pool,
        owned_since=timezone.now() if owner is not None else None,
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    customer.save()
    if tag_objects:
        customer.tags.set(tag_objects)
    _write_lists(customer, lists)
    search.rebuild_tokens(customer)

    changes = _creation_changes(customer)
    for field in ("phones", "emails", "addresses"):
        if lists.get(field):
            changes[field] = CHANGED
    if lists.get("platform_accounts"):
        changes["platform_accounts"] = [None, _signature(customer, "platform_accounts")]
    if tag_objects:
        changes["tags"] = [None, sorted(t.name for t in tag_objects)]
    audit_record(action=AuditAction.CREATE, actor=actor, obj=customer, changes=changes)
    return customer


@transaction.atomic
def customer_update(*, actor, customer: Customer, **fields) -> Customer:
    """Change the given fields of a customer; a list that is given replaces the whole set (and needs
    the add/change/delete permissions of what it does to the rows, PermissionDenied otherwise).
    A field left out is kept."""
    unknown = set(fields) - UPDATABLE
    if unknown:
        raise TypeError(f"customer_update() got unexpected fields: {', '.join(sorted(unknown))}")
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if customer.is_deleted:
        raise ValidationError(_("A deleted customer cannot be changed: restore it first."), code="deleted")
    for field in LIST_FIELDS:
        if field in fields and any(not isinstance(item, dict) for item in fields[field] or ()):
            raise TypeError(f"{field} must be a sequence of dicts")
    _check_list_permissions(
        actor, customer, {k: list(v or ()) for k, v in fields.items() if k in LIST_FIELDS}
    )
    errors = _Errors()
    scalars = _clean_scalars(errors, {k: v for k, v in fields.items() if k in SCALAR_FIELDS})
    lists = _clean_lists(errors, {k: v for k, v in fields.items() if k in LIST_FIELDS}, customer=customer)
    ownership = {}
    if {"owner", "team", "pool"} & set(fields):
        if "owner" in fields:
            owner = fields["owner"]
            team = fields.get("team", _UNSET)
            pool = fields.get("pool", customer.pool if owner is None else None)
        else:
            owner = customer.owner
            team = fields.get("team", customer.team)
            pool = fields.get("pool", customer.pool)
        owner, team, pool = _resolve_ownership(
            errors, actor=actor, owner=owner, team=team, pool=pool, current_owner=customer.owner
        )
        ownership = {"owner": owner, "team": team, "pool": pool}
    tag_objects = _coerce_tags(errors, actor, fields["tags"]) if "tags" in fields else None
    errors.raise_if_any()

    before = snapshot(customer)
    lists_before = {field: _signature(customer, field) for field in lists}
    if tag_objects is not None:
        lists_before["tags"] = _tag_names(customer)
    name_changed = "name" in scalars and scalars["name"] != customer.name
    for attr, value in {**scalars, **ownership}.items():
        setattr(customer, attr, value)
    if ownership and str(customer.owner_id or "") != str(before.get("owner") or ""):
        customer.owned_since = timezone.now() if customer.owner_id else None
    customer.save()
    if tag_objects is not None:
        customer.tags.set(tag_objects)
    _write_lists(customer, lists)
    if name_changed:
        search.rebuild_tokens(customer)

    customer.refresh_from_db()
    changes = {k: v for k, v in diff(before, snapshot(customer), Customer).items() if k != "updated_at"}
    after = {field: _signature(customer, field) for field in lists}
    if tag_objects is not None:
        after["tags"] = _tag_names(customer)
    changes.update(_list_changes(lists_before, after))
    if changes:
        audit_record(action=AuditAction.UPDATE, actor=actor, obj=customer, changes=changes)
    return customer


@transaction.atomic
def customer_delete(*, actor, customer: Customer, reason: str = "") -> Customer:
    """Soft delete: the customer disappears from lists and pages until an administrator restores it."""
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if customer.is_deleted:
        raise ValidationError(_("This customer is already deleted."), code="already_deleted")
    customer.deleted_at = timezone.now()
    customer.deleted_by = actor if getattr(actor, "pk", None) else None
    customer.save(update_fields=["deleted_at", "deleted_by", "updated_at"])
    audit_record(
        action=AuditAction.DELETE,
        actor=actor,
        obj=customer,
        changes={"deleted_at": [None, customer.deleted_at]},
        message=reason or "soft delete",
    )
    return customer


@transaction.atomic
def customer_restore(*, actor, customer: Customer) -> Customer:
    """Undo a soft delete (needs customers.restore_customer)."""
    if actor is None or not actor.has_perm("customers.restore_customer"):
        raise ValidationError(_("You may not restore deleted customers."), code="permission_denied")
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if not customer.is_deleted:
        raise ValidationError(_("This customer is not deleted."), code="not_deleted")
    was = customer.deleted_at
    customer.deleted_at = None
    customer.deleted_by = None
    customer.save(update_fields=["deleted_at", "deleted_by", "updated_at"])
    audit_record(
        action=AuditAction.UPDATE,
        actor=actor,
        obj=customer,
        changes={"deleted_at": [was, None]},
        message="restore",
    )
    return customer


@transaction.atomic
def customer_assign(*, actor, customer: Customer, owner, reason: str = "") -> Customer:
    """Give a customer to ``owner`` (and the owner's team); takes it out of its pool.

    Needs customers.assign_customer and an owner within the actor's reach (see
    ``assignable_users``). Claiming from a pool is ``customers.services.pools.pool_claim``.
    """
    if actor is None or not actor.has_perm("customers.assign_customer"):
        raise ValidationError(_("You may not assign customers."), code="permission_denied")
    if owner is None or not can_assign_to(actor, owner):
        raise ValidationError(
            {"owner": [ValidationError(_("You may not make this user the owner."), code="not_assignable")]}
        )
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if customer.is_deleted:
        raise ValidationError(_("A deleted customer cannot be changed: restore it first."), code="deleted")
    if len(reason) > 300:
        raise ValidationError({"reason": [ValidationError(_too_long(300), code="max_length")]})
    before = snapshot(customer, fields=["owner", "team", "pool", "owned_since"])
    customer.owner = owner
    customer.team = owner.team
    customer.pool = None
    if before["owner"] != str(owner.pk):
        customer.owned_since = timezone.now()
    customer.save(update_fields=["owner", "team", "pool", "owned_since", "updated_at"])
    changes = diff(before, snapshot(customer, fields=before.keys()), Customer)
    audit_record(
        action=AuditAction.UPDATE, actor=actor, obj=customer, changes=changes, message=reason or "assign"
    )
    return customer


@transaction.atomic
def customer_set_tags(*, actor, customer: Customer, add: Iterable = (), remove: Iterable = ()) -> Customer:
    """Add and remove tags (Tag objects, ids or names); records the change when there is one."""
    errors = _Errors()
    to_add = _coerce_tags(errors, actor, add)
    to_remove = _coerce_tags(_Errors(), None, remove)  # removing an unknown tag is a no-op
    errors.raise_if_any()
    before = _tag_names(customer)
    if to_add:
        customer.tags.add(*to_add)
    if to_remove:
        customer.tags.remove(*to_remove)
    after = _tag_names(customer)
    if before != after:
        Customer.objects.filter(pk=customer.pk).update(updated_at=timezone.now())
        audit_record(action=AuditAction.UPDATE, actor=actor, obj=customer, changes={"tags": [before, after]})
    return customer
