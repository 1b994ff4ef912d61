# ruff: noqa: F811  (pytest fixtures imported from tests/sales/factories_quotes.py)
"""sales.services.quotes: create, edit, send (with approvals), accept, reject, revise, expire,
convert to an order (R5.2.1). Positive and negative cases; nothing half-written on errors."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from crm.core.audit.models import AuditEntry
from crm.core.notifications.models import Notification
from customers.models import ContactPerson
from sales.models import ApprovalRequest, Product, Quote, QuoteLine, QuoteRevision
from sales.services import approvals
from sales.services import quotes as services
from sales.services.pricing import LineInput, compute_totals
from tests.customers.factories import CustomerFactory, EmailFactory

from .factories import ProductFactory, WarehouseFactory
from .factories_quotes import line, make_quote, sales_team, signing_key  # noqa: F401

D = Decimal
pytestmark = pytest.mark.django_db


def test_create_computes_totals_with_the_shared_pricing(sales_team):
    """R5.2.1: totals in Decimal from sales.services.pricing; number Q<yyyymm>-NNNNNN; audited."""
    rep = sales_team["rep"]
    a = ProductFactory(list_price=D("99.90"))
    b = ProductFactory(list_price=D("40.00"), tax_rate=D("0.06"))
    quote = make_quote(
        owner=rep,
        lines=[line(a, "3", "0.05"), line(b, "2.5", "0", price=D("40.00"))],
        order_discount_rate=D("0.02"),
        title="年度采购",
    )
    expected = compute_totals(
        [
            LineInput(quantity=D("3"), unit_price=D("99.90"), discount_rate=D("0.05"), tax_rate=D("0.13")),
            LineInput(quantity=D("2.5"), unit_price=D("40.00"), tax_rate=D("0.06")),
        ],
        order_discount_rate=D("0.02"),
    )
    assert quote.total == expected.total
    assert quote.tax_total == expected.tax
    assert quote.subtotal == expected.goods
    assert quote.status == Quote.Status.DRAFT
    assert quote.revision == 1
    assert quote.number.startswith("Q")
    assert len(quote.number) == len("Q202601-000001")
    assert quote.owner == rep
    assert quote.team == rep.team
    assert quote.max_discount_rate >= D("0.05")
    lines = list(QuoteLine.objects.filter(quote=quote))
    assert [ln.position for ln in lines] == [1, 2]
    assert sum(ln.net_amount + ln.tax_amount for ln in lines) == quote.total
    assert AuditEntry.objects.filter(
        object_type="sales.quote", object_id=str(quote.pk), action="create"
    ).exists()


def test_unit_price_defaults_to_the_product_price(sales_team):
    product = ProductFactory(list_price=D("123.45"))
    quote = make_quote(owner=sales_team["rep"], lines=[line(product, "1")])
    assert quote.lines.get().unit_price == D("123.45")


@pytest.mark.parametrize(
    ("quantity", "discount", "price", "fragment"),
    [
        ("-1", "0", None, "greater than zero"),
        ("1.2345", "0", None, "three decimal"),
        ("1", "1.5", None, "between 0%"),
        ("1", "0", "9.999", "two decimal"),
        ("abc", "0", None, "number"),
    ],
)
def test_bad_lines_are_refused_naming_line_and_sku(sales_team, quantity, discount, price, fragment):
    """Bad input: a clear message naming the line and SKU, and nothing written."""
    product = ProductFactory(sku="BAD-SKU-1")
    customer = CustomerFactory(owner=sales_team["rep"])
    with pytest.raises(ValidationError) as caught:
        services.quote_create(
            actor=sales_team["rep"],
            customer=customer,
            lines=[
                services.QuoteLineInput(
                    product=product, quantity=quantity, discount_rate=discount, unit_price=price
                )
            ],
        )
    text = " ".join(caught.value.message_dict["lines"])
    assert "BAD-SKU-1" in text
    assert "1" in text
    assert fragment in text
    assert not Quote.objects.exists()


def test_discontinued_product_empty_lines_and_past_validity_are_refused(sales_team):
    rep = sales_team["rep"]
    old = ProductFactory(sku="OLD-1", status=Product.Status.DISCONTINUED)
    customer = CustomerFactory(owner=rep)
    with pytest.raises(ValidationError) as caught:
        services.quote_create(actor=rep, customer=customer, lines=[line(old)])
    assert "OLD-1" in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        services.quote_create(actor=rep, customer=customer, lines=[])
    assert "lines" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        services.quote_create(
            actor=rep,
            customer=customer,
            lines=[line(ProductFactory())],
            valid_until=timezone.localdate() - datetime.timedelta(days=1),
        )
    assert "valid_until" in caught.value.message_dict
    assert not Quote.objects.exists()


def test_contact_must_belong_to_the_customer(sales_team):
    rep = sales_team["rep"]
    customer = CustomerFactory(owner=rep)
    stranger = ContactPerson.objects.create(customer=CustomerFactory(owner=rep, kind="company"), name="王五")
    with pytest.raises(ValidationError) as caught:
        make_quote(owner=rep, customer=customer, contact=stranger)
    assert "contact" in caught.value.message_dict


def test_a_rep_cannot_quote_for_a_customer_they_cannot_see(sales_team):
    hidden = CustomerFactory(owner=sales_team["other"])
    with pytest.raises(PermissionDenied):
        make_quote(owner=sales_team["rep"], customer=hidden)
    with pytest.raises(PermissionDenied):
        make_quote(owner=sales_team["analyst"], customer=CustomerFactory(owner=sales_team["rep"]))


def test_update_replaces_lines_and_withdraws_a_pending_approval(sales_team):
    rep = sales_team["rep"]
    quote = make_quote(owner=rep, lines=[line(ProductFactory(), "1", "0.20")])
    request = approvals.approval_request(actor=rep, document=quote)
    quote.refresh_from_db()
    assert quote.status == Quote.Status.PENDING_APPROVAL
    product = ProductFactory(list_price=D("10.00"))
    quote = services.quote_update(actor=rep, quote=quote, lines=[line(product, "4")], title="新标题")
    assert quote.status == Quote.Status.DRAFT
    assert quote.total == D("40.00")
    assert quote.title == "新标题"
    request.refresh_from_db()
    assert request.status == ApprovalRequest.Status.CANCELLED
    assert approvals.approval_needed(document=quote, actor=rep) == []


def test_update_refuses_a_sent_quote_and_another_reps_quote(sales_team):
    quote = make_quote(owner=sales_team["rep"], send=True)
    with pytest.raises(ValidationError) as caught:
        services.quote_update(actor=sales_team["rep"], quote=quote, title="x")
    assert "revise" in str(caught.value)
    with pytest.raises(PermissionDenied):
        services.quote_update(actor=sales_team["other"], quote=quote, title="x")
    with pytest.raises(TypeError):
        services.quote_update(actor=sales_team["rep"], quote=quote, number="hack")


def test_send_needs_approval_above_the_role_limit(sales_team):
    """R5.2.1 approvals: a rep's 15% discount (limit 10%) cannot be sent before approval."""
    rep, manager = sales_team["rep"], sales_team["manager"]
    quote = make_quote(owner=rep, lines=[line(ProductFactory(), "2", "0.15")])
    with pytest.raises(ValidationError) as caught:
        services.quote_send(actor=rep, quote=quote)
    assert caught.value.code == "approval_required"
    request = approvals.approval_request(actor=rep, document=quote)
    assert request.approver_user == manager
    approvals.approval_decide(actor=manager, request=request, approve=True, comment="可以")
    quote.refresh_from_db()
    assert quote.status == Quote.Status.APPROVED
    quote = services.quote_send(actor=rep, quote=quote)
    assert quote.status == Quote.Status.SENT
    assert quote.sent_at is not None


def test_send_by_email_attaches_the_signed_pdf(sales_team, signing_key):
    rep = sales_team["rep"]
    customer = CustomerFactory(owner=rep, name="杭州示例贸易有限公司")
    EmailFactory(customer=customer, address="buyer@example.com")
    quote = make_quote(owner=rep, customer=customer)
    quote = services.quote_send(
        actor=rep, quote=quote, recipients=["buyer@example.com"], message="请查收", attach_xlsx=True
    )
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["buyer@example.com"]
    assert quote.number in message.subject
    assert "请查收" in message.body
    names = [a[0] for a in message.attachments]
    assert names == [f"{quote.number}-r1.pdf", f"{quote.number}-r1.xlsx"]
    pdf = message.attachments[0][1]
    from sales.services.quote_documents import verify_quote_pdf

    assert verify_quote_pdf(pdf).ok
    assert quote.content_digest == verify_quote_pdf(pdf).digest
    entry = AuditEntry.objects.filter(object_id=str(quote.pk), action="export").latest("seq")
    assert entry.changes["sent_to"] == ["b***@example.com"] or "buyer@example.com" not in str(entry.changes)


def test_send_refuses_bad_addresses_and_writes_nothing(sales_team):
    rep = sales_team["rep"]
    quote = make_quote(owner=rep)
    with pytest.raises(ValidationError) as caught:
        services.quote_send(actor=rep, quote=quote, recipients=["not-an-address"])
    assert "recipients" in caught.value.message_dict
    quote.refresh_from_db()
    assert quote.status == Quote.Status.DRAFT
    assert not mail.outbox


def test_mail_server_failure_rolls_everything_back(sales_team, signing_key, monkeypatch):
    rep = sales_team["rep"]
    quote = make_quote(owner=rep)

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr("django.core.mail.EmailMessage.send", refuse)
    with pytest.raises(ConnectionRefusedError):
        services.quote_send(actor=rep, quote=quote, recipients=["a@example.com"])
    quote.refresh_from_db()
    assert quote.status == Quote.Status.DRAFT
    assert quote.sent_at is None


def test_accept_reject_and_their_guards(sales_team):
    rep = sales_team["rep"]
    draft = make_quote(owner=rep)
    with pytest.raises(ValidationError):
        services.quote_accept(actor=rep, quote=draft)
    sent = make_quote(owner=rep, send=True)
    sent = services.quote_reject(actor=rep, quote=sent, reason="价格偏高")
    assert sent.status == Quote.Status.REJECTED
    assert sent.rejection_reason == "价格偏高"
    with pytest.raises(ValidationError):
        services.quote_accept(actor=rep, quote=sent)
    other = make_quote(owner=rep, send=True)
    accepted = services.quote_accept(actor=rep, quote=other)
    assert accepted.status == Quote.Status.ACCEPTED
    assert accepted.decided_at
    with pytest.raises(ValidationError):
        services.quote_reject(actor=rep, quote=accepted, reason="x" * 201)


def test_an_expired_validity_cannot_be_accepted(sales_team):
    rep = sales_team["rep"]
    quote = make_quote(owner=rep, send=True)
    Quote.objects.filter(pk=quote.pk).update(valid_until=timezone.localdate() - datetime.timedelta(days=1))
    with pytest.raises(ValidationError) as caught:
        services.quote_accept(actor=rep, quote=quote)
    assert caught.value.code == "quote_expired"


def test_revise_freezes_the_content_and_reopens_a_draft(sales_team):
    rep = sales_team["rep"]
    quote = make_quote(owner=rep, send=True)
    first_total = quote.total
    services.quote_reject(actor=rep, quote=quote, reason="太贵")
    quote = services.quote_revise(actor=rep, quote=quote, reason="降价")
    assert quote.revision == 2
    assert quote.status == Quote.Status.DRAFT
    assert quote.sent_at is None
    frozen = QuoteRevision.objects.get(quote=quote)
    assert frozen.revision == 1
    assert frozen.total == first_total
    assert frozen.reason == "降价"
    assert frozen.snapshot["lines"][0]["sku"] == quote.lines.get().product.sku
    assert frozen.snapshot["status"] == Quote.Status.REJECTED
    product = quote.lines.get().product
    quote = services.quote_update(actor=rep, quote=quote, lines=[line(product, "2", "0.05")])
    assert quote.total < first_total
    services.quote_send(actor=rep, quote=quote)
    services.quote_accept(actor=rep, quote=quote)
    with pytest.raises(ValidationError) as caught:
        services.quote_revise(actor=rep, quote=quote)
    assert caught.value.code == "quote_not_revisable"
    draft = make_quote(owner=rep)
    with pytest.raises(ValidationError):
        services.quote_revise(actor=rep, quote=draft)


def test_expire_due_expires_sent_quotes_once_and_tells_the_owner(sales_team):
    rep = sales_team["rep"]
    old = make_quote(owner=rep, send=True)
    fresh = make_quote(owner=rep, send=True)
    draft = make_quote(owner=rep)
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    Quote.objects.filter(pk__in=[old.pk, draft.pk]).update(valid_until=yesterday)
    assert services.quote_expire_due() == 1
    assert services.quote_expire_due() == 0  # idempotent
    old.refresh_from_db()
    fresh.refresh_from_db()
    draft.refresh_from_db()
    assert old.status == Quote.Status.EXPIRED
    assert fresh.status == Quote.Status.SENT
    assert draft.status == Quote.Status.DRAFT
    assert Notification.objects.filter(recipient=rep, url=old.get_absolute_url()).count() == 1


def test_expiry_works_through_a_backlog_in_batches(sales_team, monkeypatch):
    monkeypatch.setattr(services, "EXPIRY_BATCH", 2)
    rep = sales_team["rep"]
    customer = CustomerFactory(owner=rep)
    product = ProductFactory()
    quotes = [make_quote(owner=rep, customer=customer, lines=[line(product)], send=True) for _ in range(5)]
    Quote.objects.filter(pk__in=[q.pk for q in quotes]).update(
        valid_until=timezone.localdate() - datetime.timedelta(days=1)
    )
    assert services.quote_expire_due() == 5
    assert not Quote.objects.filter(status=Quote.Status.SENT).exists()


def test_expiry_task_runs_the_service(sales_team):
    from sales.tasks.quotes import expire_quotes

    quote = make_quote(owner=sales_team["rep"], send=True)
    Quote.objects.filter(pk=quote.pk).update(valid_until=timezone.localdate() - datetime.timedelta(days=3))
    assert expire_quotes.delay().get() == 1


def test_expiry_job_is_scheduled_after_migrate():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(name="sales: expire quotes")
    assert task.task == "sales.tasks.quotes.expire_quotes"
    assert task.enabled


def _stock(product, quantity="100"):
    from sales.services.inventory import stock_receive
    from tests.factories import UserFactory

    admin = UserFactory(role="Administrator")
    warehouse = WarehouseFactory(code="main", is_default=True)
    stock_receive(actor=admin, product=product, warehouse=warehouse, quantity=D(quantity), reason="采购入库")


def test_accepted_quote_becomes_a_confirmed_order(sales_team):
    """R5.2.1: an accepted quote becomes an order in one click, with the same amounts."""
    rep = sales_team["rep"]
    product = ProductFactory()
    _stock(product)
    quote = make_quote(owner=rep, lines=[line(product, "3", "0.05")], send=True)
    order = services.quote_accept_and_convert(actor=rep, quote=quote)
    quote.refresh_from_db()
    assert quote.status == Quote.Status.ACCEPTED
    assert order.quote == quote
    assert order.source == "quote"
    assert order.customer == quote.customer
    assert order.total_amount == quote.total
    assert order.status in ("pending_payment", "paid")
    with pytest.raises(ValidationError) as caught:
        services.quote_convert_to_order(actor=rep, quote=quote)
    assert order.number in str(caught.value)


def test_conversion_without_stock_changes_nothing(sales_team):
    rep = sales_team["rep"]
    product = ProductFactory(sku="NO-STOCK-1")
    WarehouseFactory(code="main", is_default=True)
    quote = make_quote(owner=rep, lines=[line(product, "3")], send=True)
    with pytest.raises(ValidationError):
        services.quote_accept_and_convert(actor=rep, quote=quote)
    quote.refresh_from_db()
    assert quote.status == Quote.Status.SENT
    assert not quote.orders.exists()


def test_only_accepted_quotes_convert(sales_team):
    quote = make_quote(owner=sales_team["rep"], send=True)
    with pytest.raises(ValidationError):
        services.quote_convert_to_order(actor=sales_team["rep"], quote=quote)


def test_order_from_an_approved_quote_needs_no_second_approval(sales_team):
    rep, manager = sales_team["rep"], sales_team["manager"]
    product = ProductFactory()
    _stock(product)
    quote = make_quote(owner=rep, lines=[line(product, "2", "0.15")])
    request = approvals.approval_request(actor=rep, document=quote)
    approvals.approval_decide(actor=manager, request=request, approve=True, comment="")
    services.quote_send(actor=rep, quote=quote)
    order = services.quote_accept_and_convert(actor=rep, quote=quote)
    assert order.status == "pending_payment"
    assert not ApprovalRequest.objects.filter(order=order).exists()
