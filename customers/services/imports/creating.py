"""Creating the customers of many import rows at once (R5.1.3).

A batch of new customers costs a handful of multi-row INSERTs (customers, phones, e-mails, platform
accounts, addresses, tag links, name search tokens, fingerprints) and one batched append to the audit
ledger, instead of a dozen statements per row through ``customer_create``. The rules stay the
records service's: scalars, phones and e-mails go through its own cleaners; platform accounts were
looked up for the whole batch before (a taken one is a match, not a creation, and the table's
unique constraint stops a concurrent writer); the address was checked by the parser with the same
rules as the service's (a complete region, a street, lengths, a six-digit postcode) and becomes the
default shipping and billing address, as the service makes a customer's first address.
Each customer gets its own audit entry, with the values ``customer_create`` records.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import connections, router
from django.utils import timezone

from crm.core.audit.models import AuditAction
from crm.core.audit.services import CHANGED, audit_record_many
from crm.core.bulk import DictInserter

from ...models import (
    Address,
    Customer,
    CustomerEmail,
    CustomerKind,
    CustomerPhone,
    CustomerSearchToken,
    Gender,
    ImportFingerprint,
    PlatformAccount,
    Source,
    Stage,
)
from .. import records, search
from .parsing import ParsedRow, RowError, RowParser, service_errors

Valid = tuple[ParsedRow, dict, dict]  # (row, cleaned scalars, cleaned lists)


def validate_new(parser: RowParser, rows: list[ParsedRow]) -> tuple[list[Valid], list[RowError]]:
    """The rows that may become customers, cleaned, and the errors of the others."""
    valid: list[Valid] = []
    errors: list[RowError] = []
    for row in rows:
        problems = records._Errors()
        data = row.data
        scalars = records._clean_scalars(problems, {k: data[k] for k in records.SCALAR_FIELDS if k in data})
        lists = records._clean_lists(
            problems, {k: data[k] for k in ("phones", "emails") if k in data}, customer=None
        )
        if problems.by_field:
            errors.extend(service_errors(parser, row, ValidationError(problems.by_field)))
            continue
        lists["addresses"] = [
            {**address, "is_default_shipping": True, "is_default_billing": True}
            for address in data.get("addresses", ())[:1]
        ]
        lists["platform_accounts"] = data.get("platform_accounts", [])
        valid.append((row, scalars, lists))
    return valid, errors


def _creation_changes(customer: dict, row: ParsedRow, lists: dict) -> dict:
    """What ``customer_create`` records for a new customer (sensitive values as "changed")."""
    changes = {
        key: [None, customer[attname]]
        for key, attname in (
            ("name", "name"),
            ("kind", "kind"),
            ("gender", "gender"),
            ("birthday", "birthday"),
            ("level", "level_id"),
            ("stage", "stage"),
            ("source", "source"),
            ("notes", "notes"),
            ("owner", "owner_id"),
            ("team", "team_id"),
            ("province", "province_id"),
            ("city", "city_id"),
        )
        if customer[attname] not in (None, "")
    }
    if customer["wechat_id"]:
        changes["wechat_id"] = CHANGED
    for key in ("phones", "emails", "addresses"):
        if lists.get(key):
            changes[key] = CHANGED
    if lists.get("platform_accounts"):
        changes["platform_accounts"] = [
            None,
            sorted(
                [a["platform"], a["account_id"], a.get("nickname", "")] for a in lists["platform_accounts"]
            ),
        ]
    if row.data.get("tags"):
        changes["tags"] = [None, sorted(row.data["tags"])]
    return changes


def _customer_values(actor, parser: RowParser, row: ParsedRow, scalars: dict, lists: dict, now) -> dict:
    owner = row.data.get("owner") or actor
    addresses = lists.get("addresses") or []
    path = parser.path(addresses[0]["region"]) if addresses else []
    level = scalars.get("level") or parser.default_level
    return {
        "kind": scalars.get("kind", CustomerKind.PERSON),
        "name": scalars["name"],
        "gender": scalars.get("gender", Gender.UNKNOWN),
        "birthday": scalars.get("birthday"),
        "level_id": level.pk if level else None,
        "stage": scalars.get("stage", Stage.NEW),
        "source": scalars.get("source", Source.OTHER),
        "notes": scalars.get("notes", ""),
        "wechat_id": scalars.get("wechat_id", ""),
        "owner_id": owner.pk,
        "team_id": owner.team_id,
        "owned_since": now,
        "created_by_id": actor.pk,
        "province_id": path[0].code if path else None,
        "city_id": path[1].code if len(path) > 1 else None,
        "created_at": now,
        "updated_at": now,
    }


def _insert_customers(rows: list[dict]) -> list[int]:
    """Insert the customers' rows; their new primary keys in the same order."""
    if _bulk_returns_ids():
        return DictInserter(Customer).insert(rows, returning=True)
    ids = []
    for values in rows:  # MySQL (not MariaDB) cannot return the new keys of a multi-row insert
        customer = Customer(**{k: v for k, v in values.items() if k not in ("created_at", "updated_at")})
        customer.save()
        ids.append(customer.pk)
    return ids


def bulk_write(actor, parser: RowParser, valid: list[Valid]) -> list[int]:
    """Insert the customers of ``valid`` with their related rows, fingerprints and audit entries;
    returns their primary keys. Call inside a transaction (a DatabaseError leaves it to roll back).

    Rows go in as plain values through ``crm.core.bulk.DictInserter`` (multi-row INSERTs that still
    encrypt and blind-index through the model fields) rather than model instances and
    ``bulk_create``, whose per-object SQL compilation cost more than the database's own work.
    """
    now = timezone.now()
    customers = [_customer_values(actor, parser, row, scalars, lists, now) for row, scalars, lists in valid]
    ids = _insert_customers(customers)
    through = Customer.tags.through
    related: dict = {
        CustomerPhone: [],
        CustomerEmail: [],
        PlatformAccount: [],
        Address: [],
        through: [],
        CustomerSearchToken: [],
        ImportFingerprint: [],
    }
    for pk, customer, (row, _scalars, lists) in zip(ids, customers, valid, strict=True):
        related[CustomerPhone] += [
            {"customer_id": pk, "number": p["number"], "label": p["label"], "is_primary": p["is_primary"]}
            for p in lists.get("phones", ())
        ]
        related[CustomerEmail] += [
            {"customer_id": pk, "address": e["address"], "is_primary": e["is_primary"]}
            for e in lists.get("emails", ())
        ]
        related[PlatformAccount] += [
            {"customer_id": pk, "platform": a["platform"], "account_id": a["account_id"], "nickname": ""}
            for a in lists["platform_accounts"]
        ]
        related[Address] += [
            {
                **{k: v for k, v in a.items() if k not in ("id", "region")},
                "region_id": a["region"].code,
                "customer_id": pk,
                "created_at": now,
                "updated_at": now,
            }
            for a in lists.get("addresses", ())
        ]
        related[through] += [
            {"customer_id": pk, "tag_id": parser.tag_id(name)} for name in row.data.get("tags", ())
        ]
        related[CustomerSearchToken] += [
            {"customer_id": pk, "token": token} for token in search.name_tokens(customer["name"])
        ]
        if row.fingerprint:
            related[ImportFingerprint].append(
                {"customer_id": pk, "fingerprint": row.fingerprint, "created_at": now}
            )
    for model, rows in related.items():
        if rows:
            DictInserter(model).insert(rows)
    label, create = Customer._meta.label_lower, AuditAction.CREATE.value
    audit_record_many(
        {
            "action": create,
            "actor": actor,
            "object_type": label,
            "object_id": str(pk),
            "object_repr": customer["name"],
            "changes": _creation_changes(customer, row, lists),
            "message": "import",
        }
        for pk, customer, (row, _scalars, lists) in zip(ids, customers, valid, strict=True)
    )
    return ids


def _bulk_returns_ids() -> bool:
    return connections[router.db_for_write(Customer)].features.can_return_rows_from_bulk_insert


class _Plain:
    """What ``bulk_write`` asks of the import's row parser, for callers that are not the customers
    import (the order import creates its buyers through ``customer_create_many``)."""

    def __init__(self):
        from ...models import CustomerLevel

        self.default_level = CustomerLevel.objects.filter(is_default=True).first()

    @staticmethod
    def path(region) -> list:
        from crm.core.regions.selectors import region_path

        return region_path(region.code)

    @staticmethod
    def tag_id(name: str) -> int:  # the items carry no tags
        raise ValueError(name)


def customer_create_many(*, actor, items: list[dict]) -> list:
    """Create many customers at once; for each item (the ``customer_create`` arguments ``name``,
    ``source``, ``owner``, ``phones``, ``platform_accounts`` and ``addresses``) the new customer's
    primary key, or the ``ValidationError`` that refused it. The rules are ``customer_create``'s
    (the same cleaners); the caller checked that the platform accounts are free and that the actor
    may make ``owner`` the owner. Call inside a transaction."""
    plain = _Plain()
    valid: list[Valid] = []
    results: list = []
    for item in items:
        problems = records._Errors()
        scalars = records._clean_scalars(
            problems, {"name": item.get("name", ""), "source": item.get("source", Source.OTHER)}
        )
        lists = records._clean_lists(
            problems,
            {"phones": item.get("phones", ()), "addresses": item.get("addresses", ())},
            customer=None,
        )
        if problems.by_field:
            results.append(ValidationError(problems.by_field))
            continue
        lists["addresses"] = [
            {**address, "is_default_shipping": True, "is_default_billing": True}
            for address in lists.get("addresses", ())[:1]
        ]
        lists["platform_accounts"] = list(item.get("platform_accounts", ()))
        row = ParsedRow(number=len(results), data={"owner": item.get("owner") or actor})
        valid.append((row, scalars, lists))
        results.append(row)
    ids = iter(bulk_write(actor, plain, valid)) if valid else iter(())
    return [next(ids) if isinstance(result, ParsedRow) else result for result in results]
