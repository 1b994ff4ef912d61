"""Writing a batch of parsed orders: find or create the customer, the address, the products, then
create the order or bring the existing one up to date.

Per batch, every lookup is one query for the whole batch: products by SKU, existing orders by
(channel, platform order number) with their lines, customers by platform account and by phone
(blind index), the visible ones among them and their addresses. Then each order is written in its
own savepoint through the services of the customers and orders areas (``customer_create``,
``customer_update``, ``address_create``, ``order_create``, ``order_apply_platform_status``), so an
order whose write fails (say a SKU short in stock) is rolled back alone and reported on its rows.

Re-importing: an order already imported (same channel and platform order number) is matched, never
created again. Its fingerprint (a keyed hash of what the file says about it) is stored on the order;
the same rows again change nothing and cost no write. Changed rows move the order to the new
platform status (``order_apply_platform_status``: forward only, or to cancelled / refund states);
the lines of an existing order are never rewritten, and rows that give other lines are an error.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, transaction
from django.utils import timezone
from django.utils.translation import gettext

from crm.core import crypto
from crm.core.fields import index_value
from crm.core.regions import selectors as regions
from crm.core.visibility import visible_to
from customers.models import Address, Customer, CustomerPhone, Platform, PlatformAccount
from customers.services import activities as customer_activities
from customers.services import records as customer_records
from customers.services.imports import creating as customer_creating
from sales.models import Order, OrderLine, OrderStatus, Product
from sales.services import orders as order_services

from . import bulk
from .parsing import OrderGroup, RowError

logger = logging.getLogger(__name__)

#: The customers' platform of each sales channel's buyer accounts.
CHANNEL_PLATFORM = {
    "tmall": Platform.TMALL,
    "taobao": Platform.TAOBAO,
    "jd": Platform.JD,
    "douyin": Platform.DOUYIN,
    "pinduoduo": Platform.PINDUODUO,
    "wechat": Platform.WECHAT_OPENID,
    "own_site": Platform.OWN_SITE,
    "offline": Platform.OTHER,
}
#: Tmall and Taobao share one buyer account (the 淘宝会员名): look in both.
SAME_ACCOUNTS = {
    Platform.TMALL: (Platform.TMALL, Platform.TAOBAO),
    Platform.TAOBAO: (Platform.TAOBAO, Platform.TMALL),
}
PAID_OR_LATER = (OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.COMPLETED)


@dataclass
class ImportReport:
    """What an import did (or, in a preview, would do)."""

    rows: int = 0  # non-blank rows read
    orders: int = 0  # orders (groups of rows) checked
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    customers_created: int = 0
    errors: list[RowError] = field(default_factory=list)
    error_rows: set[int] = field(default_factory=set)
    failed_orders: int = 0
    sample: list[dict] = field(default_factory=list)

    @property
    def error_count(self) -> int:
        """Rows with at least one error."""
        return len(self.error_rows)

    # The customers import's report attributes, so its error report writer fits this one too.
    @property
    def total(self) -> int:
        return self.rows

    def add_errors(self, errors: list[RowError], rows: list[int] | None = None) -> None:
        self.errors.extend(errors)
        self.error_rows.update(e.row for e in errors)
        if rows:
            self.error_rows.update(rows)

    def summary(self) -> str:
        return gettext(
            "Orders created %(created)d, updated %(updated)d, unchanged %(unchanged)d; "
            "new customers %(customers)d; rows with errors %(errors)d."
        ) % {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "customers": self.customers_created,
            "errors": self.error_count,
        }


def _platforms_for(channel: str) -> tuple[str, ...]:
    platform = CHANNEL_PLATFORM.get(channel, Platform.OTHER)
    return SAME_ACCOUNTS.get(platform, (platform,))


def _phone_key(phone: str) -> str:
    return index_value("phone", phone)


def _street_key(region_code, street: str) -> tuple:
    return region_code, crypto.normalize_text(street).casefold()


class _GroupFailedError(Exception):
    """Raised inside a group's savepoint to roll it back; carries the errors to report."""

    def __init__(self, errors: list[RowError]):
        super().__init__(errors)
        self.errors = errors


class _Run:
    """New orders planned for the fast path, waiting to be written together."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.now = timezone.now()
        self.planned: dict[int, tuple] = {}  # id(group) -> (group, bulk.Planned, customer or _NewBuyer)
        self.placeholders: dict[tuple, Customer] = {}  # a new buyer's key -> unsaved customer
        self.pending_keys: dict[tuple, tuple] = {}  # any key of a new buyer -> its key


class _NewBuyer:
    """A buyer the batch creates: ``key`` names it (its first account or phone key)."""

    def __init__(self, key: tuple):
        self.key = key
        self.first = False  # the order the customer is created from


@dataclass
class _Lookups:
    orders: dict = field(default_factory=dict)  # (channel, number) -> Order
    order_lines: dict = field(default_factory=dict)  # order id -> Counter of (sku, quantity)
    visible_orders: set = field(default_factory=set)
    accounts: dict = field(default_factory=dict)  # (platform, account) -> customer id
    phones: dict = field(default_factory=dict)  # phone index -> set of customer ids
    customers: dict = field(default_factory=dict)  # id -> Customer (visible, not deleted)
    addresses: dict = field(default_factory=dict)  # customer id -> set of (region, street) keys


_REPORT_COUNTERS = ("orders", "created", "updated", "unchanged", "customers_created", "failed_orders")


def _raise_if_transaction_lost() -> None:
    """After a database error in a savepoint: when the database rolled back the whole transaction
    (a deadlock victim), the batch cannot go on; its caller writes it again (``running``)."""
    if transaction.get_connection().needs_rollback:
        raise BatchRolledBackError


class BatchRolledBackError(Exception):
    """The database rolled back the batch's transaction: nothing of the batch was written."""


class BatchWriter:
    """Writes the orders of one import, batch by batch (lookups cached across batches)."""

    def __init__(
        self,
        *,
        actor,
        owner,
        report: ImportReport,
        sample_size: int = 20,
        fast_path: bool = True,
        track_stock: bool = True,
    ):
        self.actor = actor
        self.fast_path = fast_path
        self.track_stock = track_stock
        self.owner = owner or actor
        self.report = report
        self.sample_size = sample_size
        self.products: dict[str, Product | None] = {}
        # Customers found or created during this import: key -> customer id.
        self.customer_keys: dict[tuple, int] = {}
        self.first_row: dict[tuple[str, str], int] = {}
        self.leaves: dict[str, bool] = {}
        self.can_add_accounts = actor.has_perm("customers.add_platformaccount") and actor.has_perm(
            "customers.change_customer"
        )
        self.can_add_addresses = actor.has_perm("customers.add_address")

    # Lookups ------------------------------------------------------------------------------------

    def _load_products(self, groups: list[OrderGroup]) -> None:
        wanted = {line.sku for g in groups for line in g.lines if line.sku and line.sku not in self.products}
        if not wanted:
            return
        found = {p.sku: p for p in Product.objects.filter(sku__in=wanted)}
        for sku in wanted:
            self.products[sku] = found.get(sku)

    def _lookups(self, groups: list[OrderGroup]) -> _Lookups:
        found = _Lookups()
        keys = {g.key for g in groups}
        numbers = {number for _channel, number in keys}
        if numbers:
            candidates = Order.objects.filter(external_number__in=numbers).select_related("customer")
            found.orders = {
                (o.channel, o.external_number): o
                for o in candidates
                if (o.channel, o.external_number) in keys
            }
        if found.orders:
            ids = [o.pk for o in found.orders.values()]
            found.visible_orders = set(
                visible_to(self.actor, Order.objects.filter(pk__in=ids)).values_list("pk", flat=True)
            )
            for order_id, sku, quantity in OrderLine.objects.filter(order_id__in=ids).values_list(
                "order_id", "sku", "quantity"
            ):
                found.order_lines.setdefault(order_id, Counter())[(sku, quantity.normalize())] += 1
        new_groups = [g for g in groups if g.key not in found.orders]
        accounts = {g.data["account_id"] for g in new_groups if g.data.get("account_id")}
        if accounts:
            for platform, account, customer_id in PlatformAccount.objects.filter(
                account_id__in=accounts, customer__deleted_at__isnull=True
            ).values_list("platform", "account_id", "customer_id"):
                found.accounts[(platform, account)] = customer_id
        phones = {_phone_key(g.data["phone"]) for g in new_groups if g.data.get("phone")}
        if phones:
            for index, customer_id in CustomerPhone.objects.filter(
                number_index__in=phones, customer__deleted_at__isnull=True
            ).values_list("number_index", "customer_id"):
                found.phones.setdefault(index, set()).add(customer_id)
        ids = set(found.accounts.values()) | {cid for ids in found.phones.values() for cid in ids}
        for group in new_groups:  # customers this import created or found in earlier batches
            for key in self._keys_of(group):
                if key in self.customer_keys:
                    ids.add(self.customer_keys[key])
        if ids:
            visible = visible_to(self.actor, Customer.objects.filter(pk__in=ids, deleted_at__isnull=True))
            found.customers = {c.pk: c for c in visible.select_related("owner")}
            for address in Address.objects.filter(customer_id__in=list(found.customers)).only(
                "customer_id", "region_id", "street"
            ):
                found.addresses.setdefault(address.customer_id, set()).add(
                    _street_key(address.region_id, address.street)
                )
        return found

    # Writing ------------------------------------------------------------------------------------

    def restore_point(self, groups: list[OrderGroup]) -> Callable[[], None]:
        """A function that puts the writer, its report and ``groups`` back as they are now: for a
        batch written again after the database rolled its transaction back (a deadlock victim)."""
        report = self.report
        counters = {name: getattr(report, name) for name in _REPORT_COUNTERS}
        errors, sample, error_rows = len(report.errors), len(report.sample), set(report.error_rows)
        keys, first_row = dict(self.customer_keys), dict(self.first_row)
        group_errors = [len(group.errors) for group in groups]

        def restore() -> None:
            for name, value in counters.items():
                setattr(report, name, value)
            del report.errors[errors:]
            del report.sample[sample:]
            report.error_rows = set(error_rows)
            self.customer_keys, self.first_row = dict(keys), dict(first_row)
            for group, count in zip(groups, group_errors, strict=True):
                del group.errors[count:]

        return restore

    def write(self, groups: list[OrderGroup]) -> None:
        """Write a batch of groups (the caller holds the transaction)."""
        if not groups:
            return
        self._load_products([g for g in groups if not g.errors])
        for group in groups:
            self._check(group)
        valid = [g for g in groups if not g.errors]
        lookups = self._lookups(valid)
        run = _Run()
        for group in groups:  # in file order: a run of new orders is written together
            if self._fast_eligible(group, lookups) and self._plan(group, lookups, run):
                continue
            self._flush(run, lookups)
            self._write_one(group, lookups)
        self._flush(run, lookups)

    def _fast_eligible(self, group: OrderGroup, lookups: _Lookups) -> bool:
        return (
            self.fast_path
            and not group.errors
            and group.key not in lookups.orders
            and group.data.get("status") in bulk.BULK_STATUSES
        )

    def _write_one(self, group: OrderGroup, lookups: _Lookups) -> None:
        """Write one order through the services, in a savepoint of its own."""
        self.report.orders += 1
        if group.errors:
            self._fail(group, group.errors)
            return
        try:
            with transaction.atomic():
                action, order, customer_action = self._write_group(group, lookups)
        except _GroupFailedError as exc:
            self._fail(group, exc.errors)
            return
        except ValidationError as exc:
            self._fail(group, self._service_errors(group, exc))
            return
        except PermissionDenied:
            self._fail(group, [self._denied(group)])
            return
        except DatabaseError:
            _raise_if_transaction_lost()
            logger.exception("Order import: order %s could not be written", group.number)
            self._fail(
                group, [RowError(group.row, "", group.number, gettext("This order could not be saved."))]
            )
            return
        setattr(self.report, action, getattr(self.report, action) + 1)
        if customer_action == "created":  # counted once the order is in (else it was rolled back)
            self.report.customers_created += 1
        self._sample(group, action, order, customer_action)

    @staticmethod
    def _denied(group: OrderGroup) -> RowError:
        return RowError(group.row, "", "", gettext("You may not make this change."))

    # The fast path (new orders written together: see ``bulk``) -----------------------------------

    def _plan(self, group: OrderGroup, lookups: _Lookups, run: _Run) -> bool:
        """Add a new order to the run (or fail it when it is invalid); False when the services
        must write it (a buyer account to add)."""
        try:
            found = self._find_customer(group, lookups, run.pending_keys)
        except _GroupFailedError as exc:
            self.report.orders += 1
            self._fail(group, exc.errors)
            return True
        if found is None:
            return False
        if isinstance(found, Customer):
            customer, owner = found, found.owner or self.owner
        else:
            customer = run.placeholders.get(found.key)
            if customer is None:
                customer = run.placeholders[found.key] = Customer(
                    name="", owner=self.owner, level=self._default_level()
                )
            for key in self._keys_of(group):
                run.pending_keys.setdefault(key, found.key)
            owner = self.owner
        try:
            item = bulk.build(
                self.actor, group, customer, owner=owner, now=run.now, stock_tracked=self.track_stock
            )
        except ValidationError as exc:
            self.report.orders += 1
            self._fail(group, self._service_errors(group, exc))
            return True
        run.planned[id(group)] = (group, item, found)
        return True

    def _flush(self, run: _Run, lookups: _Lookups) -> None:
        """Write the run's orders together; those short in stock, or all of them if the write fails,
        go through the services one by one, in file order."""
        planned = run.planned
        run.reset()
        if not planned:
            return
        deferred = self._defer_short(planned)
        keys, created = dict(self.customer_keys), self.report.customers_created
        customers, addresses = dict(lookups.customers), {k: set(v) for k, v in lookups.addresses.items()}
        try:
            with transaction.atomic():
                self._create_buyers(planned, lookups)
                self._add_addresses_fast(planned, lookups)
                items = [item for _group, item, _found in planned.values()]
                bulk.write_orders(
                    actor=self.actor, planned=items, warehouse=self._warehouse(), now=timezone.now()
                )
        except (bulk.StockShortError, DatabaseError):
            _raise_if_transaction_lost()
            # All rolled back (a shortage found under the locks, a buyer account another import
            # took meanwhile...): the services write these orders one by one and report each.
            logger.info("Order import: %d new orders go through the services", len(planned))
            self.customer_keys, self.report.customers_created = keys, created
            lookups.customers, lookups.addresses = customers, addresses
            deferred += [group for group, _item, _found in planned.values()]
        else:
            for group, item, found in planned.values():
                self.report.orders += 1
                self.report.created += 1
                lookups.orders[group.key] = item.order
                self._sample(
                    group, "created", item.order, "created" if getattr(found, "first", False) else "found"
                )
        for group in sorted(deferred, key=lambda g: g.row):
            self._write_one(group, lookups)

    def _default_level(self):
        if not hasattr(self, "_level"):
            from customers.models import CustomerLevel

            self._level = CustomerLevel.objects.filter(is_default=True).first()
        return self._level

    def _warehouse(self):
        if not hasattr(self, "_default_warehouse"):
            from sales.services.inventory import default_warehouse

            self._default_warehouse = default_warehouse()
        return self._default_warehouse

    def _find_customer(self, group: OrderGroup, lookups: _Lookups, pending_keys: dict):
        """The buyer of a new order without writing anything: a visible Customer; a ``_NewBuyer``
        key for one to create (shared by the batch's orders of the same buyer); None when the
        services must write the order (a buyer account to add). _GroupFailedError as
        ``_customer_for``."""
        account = group.data.get("account_id") or ""
        customer_id, found_by_account = self._known_customer(group, lookups)
        if customer_id is None:
            keys = self._keys_of(group)
            matched = {pending_keys[key] for key in keys if key in pending_keys}
            if not matched:
                return _NewBuyer(keys[0] if keys else ("row", group.row))
            if len(matched) > 1 or (
                account and not all(k in pending_keys for k in keys if k[0] == "account")
            ):
                return None  # the same phone with another account: the services add it
            return _NewBuyer(matched.pop())
        customer = lookups.customers.get(customer_id) or self._visible_customer(customer_id)
        if customer is None:
            raise _GroupFailedError([self._invisible_buyer(group, account)])
        lookups.customers[customer_id] = customer
        if account and not found_by_account and self.can_add_accounts:
            return None
        platform = CHANNEL_PLATFORM.get(group.channel, Platform.OTHER)
        self._remember(group, customer.pk, platform)
        return customer

    def _defer_short(self, planned: dict) -> list[OrderGroup]:
        """Take the orders whose products are short in stock (or that need a warehouse when there
        is none) out of ``planned``: the services report them, row by row."""
        reserving = [item for _group, item, _found in planned.values() if item.reserves]
        if not reserving:
            return []
        warehouse = self._warehouse()
        short = bulk.stock_shortages(reserving, warehouse) if warehouse is not None else None
        deferred = []
        for key, (group, item, _found) in list(planned.items()):
            if item.reserves and (short is None or any(line.product_id in short for line in item.lines)):
                deferred.append(group)
                del planned[key]
        return deferred

    def _create_buyers(self, planned: dict, lookups: _Lookups) -> None:
        """Create the new buyers of the planned orders at once (from the first order of each)."""
        first_groups: dict[tuple, OrderGroup] = {}
        for group, _item, found in planned.values():
            if isinstance(found, _NewBuyer):
                first_groups.setdefault(found.key, group)
        if not first_groups:
            return
        keys = list(first_groups)
        results = customer_creating.customer_create_many(
            actor=self.actor,
            items=[self._new_customer_item(first_groups[key]) for key in keys],
        )
        created = dict(zip(keys, results, strict=True))
        customers = {}
        ids = [pk for pk in results if isinstance(pk, int)]
        if ids:
            customers = {c.pk: c for c in Customer.objects.filter(pk__in=ids).select_related("owner")}
        for key, (group, item, found) in list(planned.items()):
            if not isinstance(found, _NewBuyer):
                continue
            result = created[found.key]
            if isinstance(result, ValidationError):
                del planned[key]
                self.report.orders += 1
                self._fail(group, self._service_errors(group, result))
                continue
            customer = customers[result]
            item.order.customer = customer
            platform = CHANNEL_PLATFORM.get(group.channel, Platform.OTHER)
            self._remember(group, customer.pk, platform)
            found.first = first_groups[found.key] is group
            if found.first:
                self.report.customers_created += 1
                lookups.customers[customer.pk] = customer
                address = self._address_item(group)
                lookups.addresses[customer.pk] = (
                    {_street_key(address["region"].code, address["street"])} if address else set()
                )

    def _new_customer_item(self, group: OrderGroup) -> dict:
        data = group.data
        platform = CHANNEL_PLATFORM.get(group.channel, Platform.OTHER)
        address = self._address_item(group)
        name = data.get("customer_name") or data.get("recipient") or data.get("account_id") or ""
        return {
            "name": name[:200],
            "source": group.channel,
            "owner": self.owner,
            "phones": [{"number": data["phone"], "label": "mobile", "is_primary": True}]
            if data.get("phone")
            else [],
            "platform_accounts": (
                [{"platform": platform, "account_id": data["account_id"], "nickname": ""}]
                if data.get("account_id")
                else []
            ),
            "addresses": [address] if address else [],
        }

    def _add_addresses_fast(self, planned: dict, lookups: _Lookups) -> None:
        """The shipping addresses the buyers do not have yet, added together."""
        if not self.can_add_addresses:
            return
        wanted = []  # (planned key, customer, address fields)
        for key, (group, item, _found) in planned.items():
            address = self._address_item(group)
            if address is None:
                continue
            customer = item.order.customer
            known = lookups.addresses.setdefault(customer.pk, set())
            street_key = _street_key(address["region"].code, address["street"])
            if street_key in known:
                continue
            known.add(street_key)
            wanted.append((key, customer, address))
        if not wanted:
            return
        results = customer_activities.address_create_many(
            actor=self.actor, items=[(customer, address) for _key, customer, address in wanted]
        )
        for (key, _customer, _address), result in zip(wanted, results, strict=True):
            if isinstance(result, Exception):
                group, _item, _found = planned.pop(key)
                self.report.orders += 1
                if isinstance(result, ValidationError):
                    self._fail(group, self._service_errors(group, result))
                else:
                    self._fail(group, [self._denied(group)])

    def _fail(self, group: OrderGroup, errors: list[RowError]) -> None:
        self.report.failed_orders += 1
        self.report.add_errors(errors, rows=group.rows)

    def _check(self, group: OrderGroup) -> None:
        """File-level rules: the rows of an order are together, and every SKU is known."""
        if not group.number or not group.channel:
            return
        first = self.first_row.setdefault(group.key, group.row)
        if first != group.row:
            group.error(
                "",
                group.number,
                gettext(
                    "Order %(number)s already appeared at row %(row)d: put all rows of an order next "
                    "to each other."
                )
                % {"number": group.number, "row": first},
            )
        for line in group.lines:
            product = self.products.get(line.sku)
            if product is None:
                group.errors.append(
                    RowError(
                        line.row,
                        line.sku_column,
                        line.sku,
                        gettext("Unknown SKU: %(sku)s.") % {"sku": line.sku},
                    )
                )
            line.product = product
        if not group.lines and not group.errors:
            group.error("", group.number, gettext("The order has no lines."))

    def _service_errors(self, group: OrderGroup, exc: ValidationError) -> list[RowError]:
        messages = []
        if hasattr(exc, "error_dict"):
            for messages_of_field in exc.message_dict.values():
                messages.extend(messages_of_field)
        else:
            messages = exc.messages
        prefix = gettext("Order %(number)s: ") % {"number": group.number}
        return [RowError(group.row, "", group.number, prefix + str(m)) for m in messages]

    def _write_group(self, group: OrderGroup, lookups: _Lookups):
        fingerprint = group.fingerprint()
        existing = lookups.orders.get(group.key)
        if existing is not None:
            return self._update(group, existing, lookups, fingerprint)
        customer, customer_action = self._customer_for(group, lookups)
        order = order_services.order_create(
            actor=self.actor,
            customer=customer,
            owner=customer.owner or self.owner,
            stock_tracked=self.track_stock,
            **bulk.order_arguments(group),
        )
        self._apply_status(group, order)
        Order.objects.filter(pk=order.pk).update(import_fingerprint=fingerprint)
        lookups.orders[group.key] = order
        return "created", order, customer_action

    def _apply_status(self, group: OrderGroup, order: Order) -> None:
        data = group.data
        status = data["status"]
        platform_status = data.get("platform_status") or ""
        paid_at = data.get("paid_at")
        if paid_at and status in PAID_OR_LATER and order.status not in PAID_OR_LATER:
            # The payment time is known: reach "paid" at that time first.
            order_services.order_apply_platform_status(
                actor=self.actor,
                order=order,
                status=OrderStatus.PAID,
                at=paid_at,
                platform_status=platform_status,
            )
        order_services.order_apply_platform_status(
            actor=self.actor,
            order=order,
            status=status,
            at=paid_at
            if status in (OrderStatus.PAID, OrderStatus.REFUND_REQUESTED, OrderStatus.REFUNDED)
            else None,
            platform_status=platform_status,
        )

    def _update(self, group: OrderGroup, order: Order, lookups: _Lookups, fingerprint: str):
        if order.pk not in lookups.visible_orders:
            raise _GroupFailedError(
                [
                    RowError(
                        group.row,
                        "",
                        group.number,
                        gettext("Order %(number)s was imported by someone else and you may not change it.")
                        % {"number": group.number},
                    )
                ]
            )
        if order.import_fingerprint == fingerprint:
            return "unchanged", order, ""
        wanted = Counter((line.sku, line.quantity.normalize()) for line in group.lines)
        if lookups.order_lines.get(order.pk, Counter()) != wanted:
            raise _GroupFailedError(
                [
                    RowError(
                        group.row,
                        "",
                        group.number,
                        gettext(
                            "The lines of order %(number)s differ from those of the order already "
                            "imported (%(order)s); the lines of an existing order are not changed."
                        )
                        % {"number": group.number, "order": order.number},
                    )
                ]
            )
        before = order.status
        self._apply_status(group, order)
        Order.objects.filter(pk=order.pk).update(import_fingerprint=fingerprint)
        order.import_fingerprint = fingerprint  # the service synced order.status
        return ("updated" if order.status != before else "unchanged"), order, ""

    # Customers ------------------------------------------------------------------------------------

    def _customer_for(self, group: OrderGroup, lookups: _Lookups):
        """(customer, "found" | "created"): by platform account, then by phone, else a new one."""
        data = group.data
        account = data.get("account_id") or ""
        platform = CHANNEL_PLATFORM.get(group.channel, Platform.OTHER)
        customer_id, found_by_account = self._known_customer(group, lookups)
        if customer_id is None:
            customer = self._create_customer(group, platform)
            self._remember(group, customer.pk, platform)
            lookups.customers[customer.pk] = customer
            region = data.get("region")
            if self._address_item(group) is not None:
                lookups.addresses[customer.pk] = {_street_key(region.code, data.get("street") or "")}
            return customer, "created"
        customer = lookups.customers.get(customer_id)
        if customer is None:
            customer = self._visible_customer(customer_id)
            if customer is None:
                raise _GroupFailedError([self._invisible_buyer(group, account)])
            lookups.customers[customer_id] = customer
        if account and not found_by_account and self.can_add_accounts:
            self._add_account(customer, platform, account)
        self._remember(group, customer.pk, platform)
        self._add_address(group, customer, lookups)
        return customer, "found"

    def _known_customer(self, group: OrderGroup, lookups: _Lookups) -> tuple[int | None, bool]:
        """(id of the buyer's customer or None, found by the platform account): by account, then by
        phone (blind index), among the batch's lookups and the customers this import met."""
        data = group.data
        account = data.get("account_id") or ""
        phone = data.get("phone") or ""
        if account:
            for candidate in _platforms_for(group.channel):
                key = ("account", candidate, account)
                customer_id = self.customer_keys.get(key) or lookups.accounts.get((candidate, account))
                if customer_id:
                    return customer_id, True
        if not phone:
            return None, False
        index = _phone_key(phone)
        ids = set(lookups.phones.get(index, ()))
        if ("phone", index) in self.customer_keys:
            ids.add(self.customer_keys[("phone", index)])
        if len(ids) > 1:
            raise _GroupFailedError(
                [
                    RowError(
                        group.row,
                        "",
                        "",
                        gettext(
                            "The phone of this order belongs to several customers: merge the duplicates "
                            "or add the buyer account."
                        ),
                    )
                ]
            )
        return next(iter(ids), None), False

    @staticmethod
    def _invisible_buyer(group: OrderGroup, account: str) -> RowError:
        return RowError(
            group.row,
            "",
            account or "",
            gettext(
                "The buyer is a customer you may not see (another team's, or deleted): "
                "ask an administrator to import this order."
            ),
        )

    def _visible_customer(self, customer_id: int):
        qs = Customer.objects.filter(pk=customer_id, deleted_at__isnull=True).select_related("owner")
        return visible_to(self.actor, qs).first()

    def _keys_of(self, group: OrderGroup) -> list[tuple]:
        keys: list[tuple] = []
        if group.data.get("account_id"):
            keys += [("account", p, group.data["account_id"]) for p in _platforms_for(group.channel)]
        if group.data.get("phone"):
            keys.append(("phone", _phone_key(group.data["phone"])))
        return keys

    def _remember(self, group: OrderGroup, customer_id: int, platform: str) -> None:
        if group.data.get("account_id"):
            self.customer_keys[("account", platform, group.data["account_id"])] = customer_id
        if group.data.get("phone"):
            self.customer_keys.setdefault(("phone", _phone_key(group.data["phone"])), customer_id)

    def _address_item(self, group: OrderGroup) -> dict | None:
        data = group.data
        region = data.get("region")
        street = data.get("street") or ""
        if region is None or not street or not self._is_leaf(region.code):
            return None
        return {
            "recipient": (data.get("recipient") or "")[:100],
            "phone": data.get("phone") or "",
            "region": region,
            "street": street,
            "postcode": data.get("postcode") or "",
        }

    def _is_leaf(self, code: str) -> bool:
        if code not in self.leaves:
            self.leaves[code] = regions.is_leaf(code)
        return self.leaves[code]

    def _create_customer(self, group: OrderGroup, platform: str) -> Customer:
        data = group.data
        name = data.get("customer_name") or data.get("recipient") or data.get("account_id") or ""
        address = self._address_item(group)
        return customer_records.customer_create(
            actor=self.actor,
            name=name[:200],
            source=group.channel,
            owner=self.owner,
            phones=[{"number": data["phone"], "label": "mobile", "is_primary": True}]
            if data.get("phone")
            else [],
            platform_accounts=(
                [{"platform": platform, "account_id": data["account_id"], "nickname": ""}]
                if data.get("account_id")
                else []
            ),
            addresses=[address] if address else [],
        )

    def _add_account(self, customer: Customer, platform: str, account: str) -> None:
        current = [
            {"id": a.pk, "platform": a.platform, "account_id": a.account_id, "nickname": a.nickname}
            for a in customer.platform_accounts.all()
        ]
        customer_records.customer_update(
            actor=self.actor,
            customer=customer,
            platform_accounts=[*current, {"platform": platform, "account_id": account, "nickname": ""}],
        )

    def _add_address(self, group: OrderGroup, customer: Customer, lookups: _Lookups) -> None:
        item = self._address_item(group)
        if item is None or not self.can_add_addresses:
            return
        known = lookups.addresses.setdefault(customer.pk, set())
        key = _street_key(item["region"].code, item["street"])
        if key in known:
            return
        customer_activities.address_create(actor=self.actor, customer=customer, **item)
        known.add(key)

    # Preview ---------------------------------------------------------------------------------------

    def _sample(self, group: OrderGroup, action: str, order: Order, customer_action: str) -> None:
        if len(self.report.sample) >= self.sample_size:
            return
        self.report.sample.append(
            {
                "rows": group.rows_label,
                "number": group.number,
                "channel": group.channel,
                "customer": order.customer.name if order.customer_id else "",
                "customer_action": customer_action,
                "lines": len(group.lines),
                "total": order.total_amount,
                "status": order.status,
                "action": action,
            }
        )
