"""A customer's own audit entries as timeline items, in the viewer's language (R5.1.1, R5.6.1).

Ledger entries keep the English ``message`` they were written with: it is part of the hash chain and
never changes. The timeline does not show that text. It renders each entry from its structured
fields (the action, the keys and ids in ``changes``) with translated sentences, so a Chinese user
reads Chinese and an English user English, whatever language the writer used. The stored message
is used in two ways only:

* as a marker that tells apart entries whose changes look alike: the pool services write
  "Claimed from pool <name>", "Released to pool <name>: <reason>" and "Assigned from pool <name> to
  <user>"; the records services "assign" (or the reason typed), "restore", "soft delete" (or the
  reason typed) and "import"; the merge service "merged from #<id>" / "merged into #<id>";
* as the body of an entry that carries no structured data at all.

Reasons typed by a user (assignment, release, deletion) are shown as typed: they are the user's
words, not the system's. Names of pools and owners are read by id (one query each, only when an
entry needs them), so a page costs the same number of queries whatever the number of entries.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.urls import reverse
from django.utils.text import Truncator
from django.utils.translation import gettext, ngettext

from crm.core.audit.models import AuditAction, AuditEntry

from ..models import Address, Customer, CustomerEmail, CustomerPhone, CustomerPool
from ..registry import TimelineItem

BODY_CHARS = 300

# Message markers written by the services (see the module docstring). Never shown.
CLAIM_MARKER = "Claimed from pool "
RELEASE_MARKER = "Released to pool "
POOL_ASSIGN_MARKER = "Assigned from pool "
DEFAULT_ASSIGN_MESSAGE = "assign"
DEFAULT_DELETE_MESSAGE = "soft delete"
RESTORE_MESSAGE = "restore"
IMPORT_MESSAGE = "import"

OWNERSHIP_KEYS = frozenset({"owner", "team", "pool", "owned_since"})
MERGE_KEYS = frozenset({"merged_from", "moved", "tags"})

ICONS = {
    "create": "plus-circle",
    "import": "upload",
    "update": "pencil",
    "tags": "tags",
    "assign": "person-check",
    "claim": "box-arrow-in-down",
    "release": "box-arrow-up",
    "pool_assign": "person-check",
    "restore": "arrow-counterclockwise",
    "delete": "trash",
    "merge": "union",
    "merged_into": "union",
    "reveal": "eye",
    "export": "download",
    "other": "journal-text",
}


def _changes(entry) -> dict:
    return entry.changes if isinstance(entry.changes, dict) else {}


def _pair(value) -> tuple:
    """``[old, new]`` of a change, or (None, None) when the value is not a pair."""
    if isinstance(value, list | tuple) and len(value) == 2:
        return value[0], value[1]
    return None, None


def _as_id(value) -> int | None:
    value = str(value if value is not None else "")
    return int(value) if value.isdigit() else None


def entry_kind(entry) -> str:
    """What an entry records, decided from its action and the shape of its changes."""
    changes = _changes(entry)
    message = entry.message or ""
    action = entry.action
    if action == AuditAction.CREATE:
        return "import" if message == IMPORT_MESSAGE else "create"
    if action == AuditAction.DELETE:
        return "merged_into" if "merged_into" in changes else "delete"
    if action == AuditAction.VIEW_SENSITIVE and isinstance(changes.get("fields"), list):
        return "reveal"
    if action == AuditAction.EXPORT and changes:
        return "export"
    if action != AuditAction.UPDATE or not changes:
        return "other"
    if "merged_from" in changes:
        return "merge"
    if "pool" in changes and "owner" in changes:
        if message.startswith(CLAIM_MARKER):
            return "claim"
        if message.startswith(RELEASE_MARKER):
            return "release"
        if message.startswith(POOL_ASSIGN_MARKER):
            return "pool_assign"
    if set(changes) == {"deleted_at"} and _pair(changes["deleted_at"])[1] is None:
        return "restore"
    if set(changes) <= OWNERSHIP_KEYS and _as_id(_pair(changes.get("owner"))[1]) is not None:
        return "assign"
    if set(changes) == {"tags"} and _pair(changes["tags"]) != (None, None):
        return "tags"
    return "update"


# Labels ------------------------------------------------------------------------------------------


def field_label(name: str) -> str:
    """The translated name of a customer field or of a list of related rows ("phones")."""
    try:
        found = Customer._meta.get_field(name)
    except FieldDoesNotExist:  # a field removed since the entry was written
        return str(name)
    if getattr(found, "auto_created", False) and not getattr(found, "concrete", True):
        return str(found.related_model._meta.verbose_name_plural)  # a reverse relation
    return str(found.verbose_name)


def field_labels(names: Iterable[str]) -> str:
    return ", ".join(field_label(name) for name in names)


def relation_label(key: str) -> str:
    """The translated name of what a merge moved (a relation accessor or a model label)."""
    for rel in Customer._meta.get_fields(include_hidden=True):
        if not (rel.auto_created and not rel.concrete and rel.is_relation):
            continue
        if key in (rel.get_accessor_name(), rel.related_model._meta.label_lower):
            return str(rel.related_model._meta.verbose_name_plural)
    return str(key)


def _revealed_labels() -> dict[str, str]:
    return {
        "wechat": str(Customer._meta.get_field("wechat_id").verbose_name),
        "phone": str(CustomerPhone._meta.get_field("number").verbose_name),
        "email": str(CustomerEmail._meta.get_field("address").verbose_name),
        "street": str(Address._meta.get_field("street").verbose_name),
        "address_phone": str(Address._meta.get_field("phone").verbose_name),
    }


def _user_name(user) -> str:
    return user.get_display_name() if hasattr(user, "get_display_name") else user.get_username()


# Rendering ---------------------------------------------------------------------------------------


@dataclass
class _Names:
    """Pools and users the entries mention, read in one query each."""

    users: dict[int, object] = field(default_factory=dict)
    pools: dict[int, object] = field(default_factory=dict)

    def user(self, value) -> str:
        found = self.users.get(_as_id(value))
        return _user_name(found) if found is not None else gettext("a former user")

    def pool(self, value) -> str:
        found = self.pools.get(_as_id(value))
        return found.name if found is not None else gettext("a removed pool")


def _wanted_ids(entries) -> tuple[set[int], set[int]]:
    users: set[int] = set()
    pools: set[int] = set()
    for entry, kind in entries:
        changes = _changes(entry)
        old_pool, new_pool = _pair(changes.get("pool"))
        new_owner = _as_id(_pair(changes.get("owner"))[1])
        if kind in ("claim", "pool_assign") and _as_id(old_pool):
            pools.add(_as_id(old_pool))
        if kind == "release" and _as_id(new_pool):
            pools.add(_as_id(new_pool))
        if kind in ("assign", "pool_assign") and new_owner:
            users.add(new_owner)
    return users, pools


def _load_names(entries) -> _Names:
    user_ids, pool_ids = _wanted_ids(entries)
    names = _Names()
    if user_ids:
        names.users = get_user_model().objects.in_bulk(sorted(user_ids))
    if pool_ids:
        names.pools = CustomerPool.objects.only("name").in_bulk(sorted(pool_ids))
    return names


def _reason(text: str) -> str:
    return gettext("Reason: %(reason)s") % {"reason": text} if text else ""


def _release_reason(message: str, pool_name: str) -> str:
    prefix = f"{RELEASE_MARKER}{pool_name}: "
    if message.startswith(prefix):
        return message[len(prefix) :]
    return message[len(RELEASE_MARKER) :].partition(": ")[2]  # the pool was renamed since


def _merge_body(changes: dict) -> str:
    lines = []
    moved = changes.get("moved")
    if isinstance(moved, dict) and moved:
        items = ", ".join(f"{relation_label(key)} ({count})" for key, count in moved.items())
        lines.append(gettext("Moved: %(items)s") % {"items": items})
    changed = [name for name in changes if name not in MERGE_KEYS]
    if changed:
        lines.append(gettext("Changed: %(fields)s") % {"fields": field_labels(changed)})
    tags = changes.get("tags")
    if isinstance(tags, dict) and tags.get("added"):
        lines.append(gettext("Tags added: %(tags)s") % {"tags": ", ".join(map(str, tags["added"]))})
    return "\n".join(lines)


def _tags_body(changes: dict) -> str:
    before, after = _pair(changes.get("tags"))
    before, after = set(before or ()), set(after or ())
    lines = []
    if after - before:
        lines.append(gettext("Tags added: %(tags)s") % {"tags": ", ".join(sorted(after - before))})
    if before - after:
        lines.append(gettext("Tags removed: %(tags)s") % {"tags": ", ".join(sorted(before - after))})
    return "\n".join(lines)


def _customer_url(value) -> str:
    pk = _as_id(value)
    return reverse("customers:customer-detail", args=[pk]) if pk else ""


def render_entry(entry, kind: str, names: _Names, actor: str) -> tuple[str, str, str]:
    """(title, body, url) of one entry, in the active language."""
    changes = _changes(entry)
    message = entry.message or ""
    who = {"actor": actor}
    if kind == "create":
        return gettext("%(actor)s created the customer") % who, "", ""
    if kind == "import":
        return gettext("%(actor)s imported the customer from a file") % who, "", ""
    if kind == "restore":
        return gettext("%(actor)s restored the customer") % who, "", ""
    if kind == "delete":
        reason = "" if message == DEFAULT_DELETE_MESSAGE else message
        return gettext("%(actor)s deleted the customer") % who, _reason(reason), ""
    if kind == "assign":
        owner = names.user(_pair(changes.get("owner"))[1])
        reason = "" if message == DEFAULT_ASSIGN_MESSAGE else message
        title = gettext("%(actor)s assigned the customer to %(owner)s") % {**who, "owner": owner}
        return title, _reason(reason), ""
    if kind == "claim":
        pool = names.pool(_pair(changes.get("pool"))[0])
        return gettext("%(actor)s claimed the customer from pool %(pool)s") % {**who, "pool": pool}, "", ""
    if kind == "release":
        pool = names.pool(_pair(changes.get("pool"))[1])
        title = gettext("%(actor)s released the customer to pool %(pool)s") % {**who, "pool": pool}
        return title, _reason(_release_reason(message, pool)), ""
    if kind == "pool_assign":
        pool = names.pool(_pair(changes.get("pool"))[0])
        owner = names.user(_pair(changes.get("owner"))[1])
        title = gettext("%(actor)s assigned the customer from pool %(pool)s to %(owner)s") % {
            **who,
            "pool": pool,
            "owner": owner,
        }
        return title, "", ""
    if kind == "merge":
        other = changes.get("merged_from")
        title = gettext("%(actor)s merged customer #%(other)s into this customer") % {**who, "other": other}
        return title, _merge_body(changes), ""
    if kind == "merged_into":
        survivor = _pair(changes.get("merged_into"))[1]
        title = gettext("%(actor)s merged this customer into customer #%(other)s") % {
            **who,
            "other": survivor,
        }
        return title, "", _customer_url(survivor)
    if kind == "reveal":
        labels = _revealed_labels()
        shown = [labels.get(str(f).partition(":")[0], str(f)) for f in changes.get("fields") or ()]
        return gettext("%(actor)s viewed in full: %(fields)s") % {**who, "fields": ", ".join(shown)}, "", ""
    if kind == "export":
        count = _as_id(changes.get("count")) or 0
        body = ngettext("%(count)d record", "%(count)d records", count) % {"count": count}
        return gettext("%(actor)s exported the customer's personal data") % who, body, ""
    if kind == "tags":
        return gettext("%(actor)s changed the tags") % who, _tags_body(changes), ""
    if kind == "update":
        body = gettext("Changed: %(fields)s") % {"fields": field_labels(changes)}
        return gettext("%(actor)s changed the customer") % who, body, ""
    # Anything else: the action's name, what changed, or (no structured data) the stored text.
    title = gettext("%(action)s by %(actor)s") % {"action": entry.get_action_display(), "actor": actor}
    if changes:
        return title, gettext("Changed: %(fields)s") % {"fields": field_labels(changes)}, ""
    return title, message, ""


def _actor_name(entry) -> str:
    if entry.actor_id and entry.actor is not None:
        return _user_name(entry.actor)
    return entry.actor_repr or gettext("the system")


def customer_audit_entries(customer: Customer, limit: int):
    """The customer's own ledger entries, newest first, with their actor (one query)."""
    return (
        AuditEntry.objects.filter(object_type=Customer._meta.label_lower, object_id=str(customer.pk))
        .select_related("actor")
        .only(
            "seq",
            "created_at",
            "actor_repr",
            "action",
            "changes",
            "message",
            "actor__username",
            "actor__display_name",
            "actor__first_name",
            "actor__last_name",
        )
        .order_by("-seq")[:limit]
    )


def audit_timeline_items(customer: Customer, limit: int) -> list[TimelineItem]:
    """Timeline items of the customer's ledger entries: what happened and who did it, in the
    active language; never the values of the fields (only their names)."""
    entries = [(entry, entry_kind(entry)) for entry in customer_audit_entries(customer, limit)]
    names = _load_names(entries)
    items = []
    for entry, kind in entries:
        title, body, url = render_entry(entry, kind, names, _actor_name(entry))
        items.append(
            TimelineItem(
                when=entry.created_at,
                icon=ICONS.get(kind, ICONS["other"]),
                title=title,
                body=Truncator(body).chars(BODY_CHARS),
                url=url,
                kind="audit",
            )
        )
    return items
