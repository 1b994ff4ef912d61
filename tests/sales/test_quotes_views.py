# ruff: noqa: F811  (pytest fixtures imported from tests/sales/factories_quotes.py)
"""Quote pages (R5.2.1, R7.1.4, R5.6.2): every URL per role, another rep's quote answers 404 and is
absent from the list, constant query counts, forms with translated errors, hostile input escaped."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from sales.models import Quote
from sales.services import quote_documents as documents
from tests.customers.factories import CustomerFactory, EmailFactory

from .factories import ProductFactory
from .factories_quotes import line, make_quote, sales_team, signing_key  # noqa: F401

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture
def quotes(sales_team):
    rep, other = sales_team["rep"], sales_team["other"]
    return {
        "mine": make_quote(owner=rep, title="我的报价"),
        "theirs": make_quote(owner=other, title="别人的报价"),
    }


def _urls(quote):
    return {
        "detail": reverse("sales:quote-detail", args=[quote.pk]),
        "edit": reverse("sales:quote-edit", args=[quote.pk]),
        "pdf": reverse("sales:quote-pdf", args=[quote.pk]),
        "xlsx": reverse("sales:quote-xlsx", args=[quote.pk]),
        "send": reverse("sales:quote-send", args=[quote.pk]),
        "revision": reverse("sales:quote-revision", args=[quote.pk, 1]),
    }


GET_PAGES = ("detail", "edit", "pdf", "xlsx", "send")


@pytest.mark.parametrize("page", GET_PAGES)
def test_rep_opens_own_quote_and_gets_404_for_another_reps(client_for, sales_team, quotes, page, signing_key):
    client = client_for(sales_team["rep"])
    assert client.get(_urls(quotes["mine"])[page]).status_code == 200
    assert client.get(_urls(quotes["theirs"])[page]).status_code == 404


@pytest.mark.parametrize("page", GET_PAGES)
def test_manager_sees_the_teams_quotes(client_for, sales_team, quotes, page, signing_key):
    client = client_for(sales_team["manager"])
    assert client.get(_urls(quotes["theirs"])[page]).status_code == 200


def test_analyst_views_but_cannot_change(client_for, sales_team, quotes, signing_key):
    client = client_for(sales_team["analyst"])
    urls = _urls(quotes["mine"])
    assert client.get(urls["detail"]).status_code == 200
    assert client.get(urls["pdf"]).status_code == 200
    assert client.get(urls["edit"]).status_code == 403
    assert client.get(urls["send"]).status_code == 403
    assert client.get(reverse("sales:quote-create")).status_code == 403
    assert client.post(reverse("sales:quote-accept", args=[quotes["mine"].pk])).status_code == 403


def test_service_agent_has_no_quotes(client_for, sales_team, quotes):
    client = client_for(sales_team["agent"])
    assert client.get(reverse("sales:quote-list")).status_code == 403
    assert client.get(_urls(quotes["mine"])["detail"]).status_code == 403
    assert client.get(reverse("sales:quote-verify")).status_code == 403


def test_anonymous_is_sent_to_login(client, quotes):
    response = client.get(reverse("sales:quote-list"))
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_post_actions_on_another_reps_quote_answer_404(client_for, sales_team, quotes):
    client = client_for(sales_team["rep"])
    for name in ("quote-accept", "quote-reject", "quote-revise", "quote-request-approval", "quote-convert"):
        assert client.post(reverse(f"sales:{name}", args=[quotes["theirs"].pk])).status_code == 404, name
    assert client.get(reverse("sales:quote-accept", args=[quotes["mine"].pk])).status_code == 405


def test_list_shows_only_visible_quotes_and_filters(client_for, sales_team, quotes):
    client = client_for(sales_team["rep"])
    body = client.get(reverse("sales:quote-list")).content.decode()
    assert quotes["mine"].number in body
    assert quotes["theirs"].number not in body
    manager = client_for(sales_team["manager"])
    body = manager.get(reverse("sales:quote-list"), {"q": quotes["theirs"].number}).content.decode()
    assert quotes["theirs"].number in body
    assert quotes["mine"].number not in body
    body = manager.get(reverse("sales:quote-list"), {"status": "sent"}).content.decode()
    assert quotes["mine"].number not in body


def test_list_filters_by_total_expiring_and_sorts(client_for, sales_team):
    rep = sales_team["rep"]
    cheap = make_quote(owner=rep, lines=[line(ProductFactory(list_price=D("10.00")), "1")], send=True)
    dear = make_quote(owner=rep, lines=[line(ProductFactory(list_price=D("9000.00")), "1")])
    Quote.objects.filter(pk=cheap.pk).update(valid_until=timezone.localdate() + datetime.timedelta(days=2))
    client = client_for(rep)
    body = client.get(reverse("sales:quote-list"), {"min_total": "100"}).content.decode()
    assert dear.number in body
    assert cheap.number not in body
    body = client.get(reverse("sales:quote-list"), {"expiring": "1"}).content.decode()
    assert cheap.number in body
    assert dear.number not in body
    body = client.get(reverse("sales:quote-list"), {"sort": "-total"}).content.decode()
    assert body.index(dear.number) < body.index(cheap.number)
    body = client.get(reverse("sales:quote-list"), {"sort": "total", "min_total": "abc", "created_from": "x"})
    assert body.status_code == 200


def _count_queries(client, url, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_list_query_count_is_constant(client_for, sales_team, django_assert_max_num_queries):
    """The list costs the same number of queries for 10 and 100 rows (R6.2.4)."""
    rep = sales_team["rep"]
    customer = CustomerFactory(owner=rep)
    product = ProductFactory()
    for _ in range(10):
        make_quote(owner=rep, customer=customer, lines=[line(product)])
    client = client_for(rep)
    url = reverse("sales:quote-list") + "?per_page=100"
    client.get(url)
    ten = _count_queries(client, url, django_assert_max_num_queries)
    for _ in range(90):
        make_quote(owner=rep, customer=customer, lines=[line(product)])
    hundred = _count_queries(client, url, django_assert_max_num_queries)
    assert ten == hundred
    assert ten <= 15


def test_detail_query_count_does_not_grow_with_lines(client_for, sales_team):
    rep = sales_team["rep"]
    small = make_quote(owner=rep, lines=[line(ProductFactory())])
    big = make_quote(owner=rep, lines=[line(ProductFactory()) for _ in range(30)])
    client = client_for(rep)
    client.get(_urls(small)["detail"])
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = []
    for quote in (small, big):
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(_urls(quote)["detail"]).status_code == 200
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]


def _form_data(customer, lines, **header):
    data = {
        "customer": str(customer.pk),
        "title": header.get("title", "报价"),
        "valid_until": header.get(
            "valid_until", (timezone.localdate() + datetime.timedelta(days=10)).isoformat()
        ),
        "order_discount": header.get("order_discount", ""),
        "terms": "",
        "notes": "",
        "lines-TOTAL_FORMS": str(len(lines)),
        "lines-INITIAL_FORMS": "0",
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "200",
    }
    for index, (sku, quantity, price, discount) in enumerate(lines):
        data.update(
            {
                f"lines-{index}-sku": sku,
                f"lines-{index}-quantity": quantity,
                f"lines-{index}-unit_price": price,
                f"lines-{index}-discount": discount,
                f"lines-{index}-description": "",
            }
        )
    return data


def test_create_page_picks_a_customer_then_saves(client_for, sales_team):
    rep = sales_team["rep"]
    customer = CustomerFactory(owner=rep, name="宁波甬江贸易")
    CustomerFactory(owner=sales_team["other"], name="宁波别人的客户")
    ProductFactory(sku="TEA-01", list_price=D("88.00"))
    client = client_for(rep)
    body = client.get(reverse("sales:quote-create"), {"q": "宁波"}).content.decode()
    assert "宁波甬江贸易" in body
    assert "宁波别人的客户" not in body
    url = reverse("sales:quote-create") + f"?customer={customer.pk}"
    assert client.get(url).status_code == 200
    response = client.post(url, _form_data(customer, [("tea-01", "2", "", "5")], title="茶叶报价"))
    assert response.status_code == 302
    quote = Quote.objects.get(title="茶叶报价")
    assert quote.customer == customer
    assert quote.owner == rep
    assert quote.lines.get().discount_rate == D("0.0500")
    assert quote.total == D("167.20")


def test_create_shows_translated_errors_and_writes_nothing(client_for, sales_team):
    rep = sales_team["rep"]
    type(rep).objects.filter(pk=rep.pk).update(language="en")  # the page speaks the user's language
    customer = CustomerFactory(owner=rep)
    client = client_for(rep)
    url = reverse("sales:quote-create") + f"?customer={customer.pk}"
    response = client.post(
        url,
        _form_data(customer, [("NOPE-404", "-1", "1.234", "120")], order_discount="abc"),
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "Unknown SKU: NOPE-404" in body
    assert "greater than zero" in body
    assert "two decimal places" in body
    assert "more than 100%" in body
    assert not Quote.objects.exists()


def test_create_for_a_hidden_customer_is_404(client_for, sales_team):
    hidden = CustomerFactory(owner=sales_team["other"])
    client = client_for(sales_team["rep"])
    assert client.get(reverse("sales:quote-create") + f"?customer={hidden.pk}").status_code == 404


def test_edit_saves_and_sent_quote_redirects(client_for, sales_team):
    rep = sales_team["rep"]
    product = ProductFactory(sku="ED-1")
    quote = make_quote(owner=rep, lines=[line(product, "1")])
    client = client_for(rep)
    assert "ED-1" in client.get(_urls(quote)["edit"]).content.decode()
    data = _form_data(quote.customer, [("ED-1", "5", "10.00", "")], title="改过")
    response = client.post(_urls(quote)["edit"], data)
    assert response.status_code == 302
    quote.refresh_from_db()
    assert quote.title == "改过"
    assert quote.total == D("50.00")
    client.post(reverse("sales:quote-send", args=[quote.pk]), {"language": "zh-hans"})
    quote.refresh_from_db()
    assert quote.status == Quote.Status.SENT
    assert client.get(_urls(quote)["edit"]).status_code == 302


def test_send_page_emails_masked_choices(client_for, sales_team, signing_key, mailoutbox):
    rep = sales_team["rep"]
    customer = CustomerFactory(owner=rep)
    email = EmailFactory(customer=customer, address="zhang.san@example.com")
    quote = make_quote(owner=rep, customer=customer)
    client = client_for(rep)
    body = client.get(_urls(quote)["send"]).content.decode()
    assert "zhang.san@example.com" not in body  # masked for a rep without the permission
    response = client.post(
        _urls(quote)["send"], {"addresses": [str(email.pk)], "other": "boss@example.com", "language": "en"}
    )
    assert response.status_code == 302
    assert mailoutbox[0].to == ["zhang.san@example.com", "boss@example.com"]
    response = client.post(
        _urls(quote)["send"], {"other": "nope", "language": "en"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 400


def test_actions_from_the_detail_page(client_for, sales_team):
    rep = sales_team["rep"]
    quote = make_quote(owner=rep, send=True)
    client = client_for(rep)
    body = client.get(_urls(quote)["detail"]).content.decode()
    assert reverse("sales:quote-accept", args=[quote.pk]) in body
    client.post(reverse("sales:quote-reject", args=[quote.pk]), {"reason": "太贵"})
    quote.refresh_from_db()
    assert quote.status == Quote.Status.REJECTED
    response = client.post(reverse("sales:quote-revise", args=[quote.pk]), {"reason": "降价"})
    assert response["Location"] == _urls(quote)["edit"]
    quote.refresh_from_db()
    assert quote.revision == 2
    assert client.get(_urls(quote)["revision"]).status_code == 200
    assert client.get(reverse("sales:quote-revision", args=[quote.pk, 9])).status_code == 404
    response = client.post(reverse("sales:quote-accept", args=[quote.pk]), follow=True)
    assert response.status_code == 200  # refused with a message, not an error page


def test_detail_history_shows_the_approval_decision(client_for, sales_team):
    from sales.services import approvals

    rep, manager = sales_team["rep"], sales_team["manager"]
    quote = make_quote(owner=rep, lines=[line(ProductFactory(), "1", "0.30")])
    client = client_for(rep)
    body = client.get(_urls(quote)["detail"]).content.decode()
    assert reverse("sales:quote-request-approval", args=[quote.pk]) in body
    client.post(reverse("sales:quote-request-approval", args=[quote.pk]))
    request = quote.approvals.get()
    approvals.approval_decide(actor=manager, request=request, approve=False, comment="折扣太大，最多 20%")
    body = client.get(_urls(quote)["detail"]).content.decode()
    assert "折扣太大，最多 20%" in body


def test_hostile_text_is_escaped(client_for, sales_team):
    rep = sales_team["rep"]
    quote = make_quote(owner=rep, title="<script>alert(1)</script>")
    body = client_for(rep).get(_urls(quote)["detail"]).content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;" in body


def test_pdf_and_xlsx_downloads(client_for, sales_team, quotes, signing_key):
    client = client_for(sales_team["rep"])
    response = client.get(_urls(quotes["mine"])["pdf"] + "?lang=en")
    assert response["Content-Type"] == "application/pdf"
    assert "attachment" in response["Content-Disposition"]
    assert documents.verify_quote_pdf(response.content).ok
    response = client.get(_urls(quotes["mine"])["xlsx"])
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")


def test_verify_page(client_for, sales_team, quotes, signing_key):
    pdf = documents.quote_pdf(quote=quotes["theirs"]).content
    client = client_for(sales_team["rep"])
    assert client.get(reverse("sales:quote-verify")).status_code == 200
    response = client.post(reverse("sales:quote-verify"), {"file": SimpleUploadedFile("q.pdf", pdf)})
    body = response.content.decode()
    assert 'data-status="genuine"' in body
    assert quotes["theirs"].number in body
    assert quotes["theirs"].get_absolute_url() not in body  # not the rep's quote: no link
    tampered = pdf.replace(b"/Producer", b"/Producex", 1)
    response = client.post(reverse("sales:quote-verify"), {"file": SimpleUploadedFile("q.pdf", tampered)})
    assert 'data-status="modified"' in response.content.decode()
    response = client.post(reverse("sales:quote-verify"), {})
    assert response.status_code == 400


def test_product_options(client_for, sales_team):
    ProductFactory(sku="ABC-1", name="苹果")
    client = client_for(sales_team["rep"])
    body = client.get(reverse("sales:quote-product-options"), {"q": "abc"}).content.decode()
    assert 'value="ABC-1"' in body
    body = client.get(reverse("sales:quote-product-options"), {"q": "苹果"}).content.decode()
    assert 'value="ABC-1"' in body
    assert client_for(sales_team["analyst"]).get(reverse("sales:quote-product-options")).status_code == 403


def test_customer_page_has_a_quotes_tab(client_for, sales_team, quotes):
    client = client_for(sales_team["rep"])
    customer = quotes["mine"].customer
    url = reverse("customers:customer-detail", args=[customer.pk]) + "?tab=quotes"
    body = client.get(url).content.decode()
    assert quotes["mine"].number in body
