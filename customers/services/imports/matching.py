"""Finding the existing customers an import row matches, and what updating one would change.

A row matches a customer (not deleted) by one of its phones, e-mails or its platform account (blind
indexes and the account's unique key); a row that matches nothing that way is looked up by its
fingerprint, the keyed hash of its normalised content stored by an earlier import of the same row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from crm.core import crypto
from crm.core.fields import index_value
from crm.core.visibility import visible_to

from ...models import (
    Address,
    Customer,
    CustomerEmail,
    CustomerKind,
    CustomerPhone,
    Gender,
    ImportFingerprint,
    PlatformAccount,
    Source,
    Stage,
)


def find_existing(rows: list) -> dict[tuple[str, str], set[int]]:
    """Customers (not deleted) matching the rows' phones, e-mails, platform accounts and fingerprints,
    as {(kind, key): {customer id}}: five queries for a whole batch of rows, each an index lookup.

    The lookups do not join the customer table: given the large IN lists of a batch, SQLite then
    preferred to walk every customer that is not deleted (83 ms instead of 6 ms for the phones of
    a batch at 100,000 customers: an import grew slower as it went); deleted customers are left out
    afterwards.
    """
    wanted: dict[str, set[str]] = {"phone": set(), "email": set(), "account": set(), "fingerprint": set()}
    for row in rows:
        for kind, key, _column in row.keys:
            wanted[kind].add(key)
        if row.fingerprint:
            wanted["fingerprint"].add(row.fingerprint)
    found: dict[tuple[str, str], set[int]] = {}

    def collect(kind: str, pairs) -> None:
        for key, customer_id in pairs:
            found.setdefault((kind, key), set()).add(customer_id)

    if wanted["phone"]:
        phones = CustomerPhone.objects.filter(number_index__in=wanted["phone"]).order_by()
        collect("phone", phones.values_list("number_index", "customer_id"))
    if wanted["email"]:
        emails = CustomerEmail.objects.filter(address_index__in=wanted["email"]).order_by()
        collect("email", emails.values_list("address_index", "customer_id"))
    if wanted["account"]:
        ids = {key.split("\x00", 1)[1] for key in wanted["account"]}
        accounts = PlatformAccount.objects.filter(account_id__in=ids).order_by()
        collect(
            "account",
            (
                (f"{platform}\x00{account_id}", customer_id)
                for platform, account_id, customer_id in accounts.values_list(
                    "platform", "account_id", "customer_id"
                )
            ),
        )
    if wanted["fingerprint"]:
        prints = ImportFingerprint.objects.filter(fingerprint__in=wanted["fingerprint"]).order_by()
        collect("fingerprint", prints.values_list("fingerprint", "customer_id"))
    matched = {customer_id for ids in found.values() for customer_id in ids}
    if matched:
        deleted = set(
            Customer.objects.filter(pk__in=matched, deleted_at__isnull=False)
            .order_by()
            .values_list("pk", flat=True)
        )
        if deleted:
            found = {key: ids - deleted for key, ids in found.items() if ids - deleted}
    return found


def matches_of(row, existing: dict) -> set[int]:
    """The customers a row matches: by its phones, e-mails and platform account; failing those, by
    its fingerprint (the same row imported before)."""
    matches: set[int] = set()
    for kind, key, _column in row.keys:
        matches |= existing.get((kind, key), set())
    if not matches and row.fingerprint:
        matches = set(existing.get(("fingerprint", row.fingerprint), ()))
    return matches


def load_customers(actor, ids: set[int]) -> dict[int, Customer]:
    """The customers ``ids`` that ``actor`` may see and that are not deleted, with their lists."""
    if not ids:
        return {}
    qs = (
        Customer.objects.filter(pk__in=ids)
        .select_related("level", "owner")
        .prefetch_related("phones", "emails", "platform_accounts", "tags", "addresses")
    )
    visible = set(visible_to(actor, Customer.objects.filter(pk__in=ids)).values_list("pk", flat=True))
    return {c.pk: c for c in qs if c.pk in visible and c.deleted_at is None}


SCALARS = ("name", "kind", "gender", "birthday", "stage", "source", "notes", "wechat_id")


@dataclass
class Snapshot:
    """What an update from an import row compares, for one existing customer: values and blind
    indexes read without building model instances or decrypting phones and e-mails."""

    values: dict  # SCALARS and level_id
    phones: set[str] = field(default_factory=set)  # blind indexes
    emails: set[str] = field(default_factory=set)
    accounts: set[tuple[str, str]] = field(default_factory=set)
    addresses: set[tuple[str, str]] = field(default_factory=set)  # (region, street) in the batch's regions
    tags: set[str] = field(default_factory=set)  # lower case


def snapshots(actor, ids: set[int], rows: list) -> dict[int, Snapshot]:
    """Snapshots of the customers ``ids`` that ``actor`` may see and that are not deleted: six
    queries for a whole batch, however many customers."""
    if not ids:
        return {}
    visible = visible_to(actor, Customer.objects.filter(pk__in=ids, deleted_at__isnull=True))
    customers = Customer.objects.filter(pk__in=visible.values("pk")).order_by()
    found = {row["id"]: Snapshot(values=row) for row in customers.values("id", "level_id", *SCALARS)}
    if not found:
        return {}

    def of(model, *names, **filters):
        return model.objects.filter(customer_id__in=list(found), **filters).order_by().values_list(*names)

    for customer_id, index in of(CustomerPhone, "customer_id", "number_index"):
        found[customer_id].phones.add(index)
    for customer_id, index in of(CustomerEmail, "customer_id", "address_index"):
        found[customer_id].emails.add(index)
    for customer_id, platform, account_id in of(PlatformAccount, "customer_id", "platform", "account_id"):
        found[customer_id].accounts.add((platform, account_id))
    regions = {a["region"].code for row in rows for a in row.data.get("addresses", ())}
    if regions:  # only the streets that could equal a row's are decrypted
        for customer_id, region_id, street in of(
            Address, "customer_id", "region_id", "street", region_id__in=regions
        ):
            found[customer_id].addresses.add((region_id, crypto.normalize_text(street)))
    for customer_id, name in of(Customer.tags.through, "customer_id", "tag__name"):
        found[customer_id].tags.add(name.lower())
    return found


def differs(snapshot: Snapshot, data: dict) -> bool:
    """Would ``update_changes`` find something to change? (The same comparisons, on a snapshot.)"""
    values = snapshot.values
    if any(key in data and data[key] != values[key] for key in SCALARS):
        return True
    if "level" in data and data["level"].pk != values["level_id"]:
        return True
    if any(index_value("phone", p["number"]) not in snapshot.phones for p in data.get("phones", ())):
        return True
    if any(index_value("email", e["address"]) not in snapshot.emails for e in data.get("emails", ())):
        return True
    accounts = data.get("platform_accounts", ())
    if any((a["platform"], a["account_id"]) not in snapshot.accounts for a in accounts):
        return True
    if any(
        (a["region"].code, crypto.normalize_text(a["street"])) not in snapshot.addresses
        for a in data.get("addresses", ())
    ):
        return True
    return any(t.lower() not in snapshot.tags for t in data.get("tags", ()))


def update_changes(customer: Customer, data: dict) -> dict:
    """The customer_update arguments that would change something (empty: nothing to write)."""
    changes: dict = {}
    for key in ("name", "kind", "gender", "birthday", "stage", "source", "notes", "wechat_id"):
        if key in data and data[key] != getattr(customer, key):
            changes[key] = data[key]
    if "level" in data and data["level"].pk != customer.level_id:
        changes["level"] = data["level"]
    phones = list(customer.phones.all())
    have = {crypto.normalize_phone(p.number) for p in phones}
    new = [p for p in data.get("phones", ()) if p["number"] not in have]
    if new:
        changes["phones"] = [
            {"id": p.pk, "number": p.number, "label": p.label, "is_primary": p.is_primary}
            for p in phones
            if not p.contact_id
        ] + [{**p, "is_primary": False} if phones else p for p in new]
    emails = list(customer.emails.all())
    have = {crypto.normalize_email(e.address) for e in emails}
    new = [e for e in data.get("emails", ()) if e["address"] not in have]
    if new:
        changes["emails"] = [
            {"id": e.pk, "address": e.address, "is_primary": e.is_primary} for e in emails if not e.contact_id
        ] + [{**e, "is_primary": False} if emails else e for e in new]
    accounts = list(customer.platform_accounts.all())
    have = {(a.platform, a.account_id) for a in accounts}
    new = [a for a in data.get("platform_accounts", ()) if (a["platform"], a["account_id"]) not in have]
    if new:
        changes["platform_accounts"] = [
            {"id": a.pk, "platform": a.platform, "account_id": a.account_id, "nickname": a.nickname}
            for a in accounts
        ] + new
    addresses = list(customer.addresses.all())
    have = {(a.region_id, crypto.normalize_text(a.street)) for a in addresses}
    new = [
        a
        for a in data.get("addresses", ())
        if (a["region"].code, crypto.normalize_text(a["street"])) not in have
    ]
    if new:
        changes["addresses"] = [
            {
                "id": a.pk,
                "recipient": a.recipient,
                "phone": a.phone,
                "region": a.region_id,
                "street": a.street,
                "postcode": a.postcode,
                "is_default_shipping": a.is_default_shipping,
                "is_default_billing": a.is_default_billing,
            }
            for a in addresses
        ] + [{**a, "is_default_shipping": not addresses} for a in new]
    have_tags = [t.name for t in customer.tags.all()]
    new_tags = [t for t in data.get("tags", ()) if t.lower() not in {n.lower() for n in have_tags}]
    if new_tags:
        changes["tags"] = [*have_tags, *new_tags]
    return changes


# Fingerprints ---------------------------------------------------------------------------------------

FINGERPRINT_PURPOSE = "customer-import-row"
# Values that say nothing beyond an empty cell: left out of the fingerprint.
_DEFAULTS = {
    "kind": CustomerKind.PERSON,
    "gender": Gender.UNKNOWN,
    "stage": Stage.NEW,
    "source": Source.OTHER,
}


def _canonical(key: str, value):
    if key in ("name", "notes", "wechat_id"):
        return crypto.normalize_text(value).casefold()
    if key == "birthday":
        return value.isoformat()
    if key == "level":
        return value.code
    if key == "phones":
        return sorted(item["number"] for item in value)
    if key == "emails":
        return sorted(item["address"] for item in value)
    if key == "platform_accounts":
        return sorted([item["platform"], item["account_id"]] for item in value)
    if key == "addresses":
        return sorted(
            [item["region"].code, crypto.normalize_text(item["street"]).casefold(), item["postcode"]]
            for item in value
        )
    if key == "tags":
        return sorted({name.casefold() for name in value})
    return value


def row_fingerprint(data: dict) -> str:
    """A keyed hash (HMAC with BLIND_INDEX_KEY) of the normalised content of a parsed row.

    Every mapped value counts except the owner (who gets the customer is not who the customer is),
    in its parsed form: 浙江 and 浙江省, 男 and male, "138 0013 8000" and 13800138000, columns in
    another order or under other titles, .xlsx or .csv all give the same fingerprint; a default value
    (个人, an unknown gender, stage 新客户, source 其他) counts as an empty cell. An import stores the
    fingerprint of each row it creates or updates a customer from, so the same row imported again
    finds that customer even when it has no phone, e-mail or platform account.
    """
    canonical = {
        key: _canonical(key, value)
        for key, value in data.items()
        if key != "owner" and value not in (None, "", []) and _DEFAULTS.get(key) != value
    }
    text = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return crypto.blind_index(text, purpose=FINGERPRINT_PURPOSE)
