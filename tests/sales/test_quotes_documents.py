# ruff: noqa: F811  (pytest fixtures imported from tests/sales/factories_quotes.py)
"""Quote documents: the PDF renders Chinese with an embedded CJK font, carries an Ed25519 signature
that the verify service and command check (R7.1.4); the .xlsx holds numbers as numbers and never
formulas; downloads are recorded in the audit ledger."""

from __future__ import annotations

import io
import time
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from crm.core.audit import signing
from crm.core.audit.models import AuditEntry
from sales.services import quote_documents as documents
from sales.services import quotes as services
from tests.customers.factories import CustomerFactory

from .factories import ProductFactory
from .factories_quotes import line, make_quote, no_signing_key, sales_team, signing_key  # noqa: F401

D = Decimal
pytestmark = pytest.mark.django_db
CUSTOMER = "杭州西湖示例贸易有限公司"
PRODUCT = "真丝连衣裙（夏季新款）"


@pytest.fixture
def chinese_quote(sales_team):
    rep = sales_team["rep"]
    customer = CustomerFactory(owner=rep, name=CUSTOMER)
    product = ProductFactory(sku="DRESS-001", name=PRODUCT, list_price=D("1299.00"))
    return make_quote(
        owner=rep,
        customer=customer,
        lines=[line(product, "3", "0.05")],
        title="夏季采购报价",
        terms="款到发货；含税含运费。",
    )


def _text(pdf: bytes) -> str:
    from pypdf import PdfReader

    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def test_pdf_renders_chinese_with_an_embedded_cjk_font(chinese_quote, signing_key):
    document = documents.quote_pdf(quote=chinese_quote, language="zh-hans")
    assert document.content.startswith(b"%PDF-")
    text = _text(document.content)
    for expected in (CUSTOMER, PRODUCT, "夏季采购报价", "款到发货", chinese_quote.number, "¥"):
        assert expected in text, expected
    from pypdf import PdfReader

    fonts = set()
    for page in PdfReader(io.BytesIO(document.content)).pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            descriptor = font.get("/FontDescriptor")
            if descriptor is not None and "/FontFile2" in descriptor.get_object():
                fonts.add(str(font["/BaseFont"]))
    assert any("WenQuanYi" in name for name in fonts), fonts  # embedded TrueType subset


def test_pdf_in_english(chinese_quote, signing_key):
    text = _text(documents.quote_pdf(quote=chinese_quote, language="en").content)
    assert "Quotation" in text
    assert CUSTOMER in text


def test_pdf_is_deterministic_and_signed(chinese_quote, signing_key):
    first = documents.quote_pdf(quote=chinese_quote)
    second = documents.quote_pdf(quote=chinese_quote)
    assert first.digest == second.digest
    assert first.signed
    assert first.key_id == signing.fingerprint(signing_key.public_key())
    result = documents.verify_quote_pdf(first.content)
    assert result.ok
    assert result.number == chinese_quote.number
    assert result.revision == 1
    assert result.is_current is True
    assert result.digest == first.digest


def test_pdf_takes_less_than_a_second(chinese_quote, signing_key):
    documents.quote_pdf(quote=chinese_quote)  # the font is parsed once per process
    start = time.perf_counter()
    documents.quote_pdf(quote=chinese_quote)
    assert time.perf_counter() - start < 1.0


def test_a_changed_byte_is_detected(chinese_quote, signing_key):
    content = documents.quote_pdf(quote=chinese_quote).content
    position = content.index(b"/Producer")
    tampered = content[:position] + b"/Producex" + content[position + 9 :]
    result = documents.verify_quote_pdf(tampered)
    assert result.status == documents.VerifyStatus.MODIFIED
    assert not result.ok


def test_data_appended_after_the_signature_is_detected(chinese_quote, signing_key):
    content = documents.quote_pdf(quote=chinese_quote).content
    update = b"1 0 obj\n<< /Evil true >>\nendobj\n%%EOF\n"
    assert documents.verify_quote_pdf(content + update).status == documents.VerifyStatus.MODIFIED


def test_unsigned_and_non_pdf_files(chinese_quote, signing_key):
    content = documents.quote_pdf(quote=chinese_quote).content
    body = content[: content.rindex(documents.SIGNATURE_MARK)]
    assert documents.verify_quote_pdf(body).status == documents.VerifyStatus.UNSIGNED
    assert documents.verify_quote_pdf(b"GIF89a...").status == documents.VerifyStatus.NOT_PDF
    garbage = body + documents.SIGNATURE_MARK + b"!!!.###\n"
    assert documents.verify_quote_pdf(garbage).status == documents.VerifyStatus.BAD_SIGNATURE


def test_a_foreign_key_is_not_trusted_and_a_forged_signature_fails(
    chinese_quote, signing_key, settings, tmp_path
):
    genuine = documents.quote_pdf(quote=chinese_quote).content
    # Signed by another installation's key: untrusted here.
    settings.AUDIT_SIGNING_KEY_PATH = tmp_path / "other" / "key.pem"
    signing.write_private_key()
    foreign = documents.quote_pdf(quote=chinese_quote).content
    settings.AUDIT_SIGNING_KEY_PATH = tmp_path / "keys" / "audit_ed25519.pem"
    assert documents.verify_quote_pdf(foreign).status == documents.VerifyStatus.UNTRUSTED_KEY
    # Our key id and public key, but someone else's signature bytes.
    body, token = documents._split_signature(genuine)
    payload, _signature = token.split(b".")
    _fbody, ftoken = documents._split_signature(foreign)
    forged = body + documents.SIGNATURE_MARK + payload + b"." + ftoken.split(b".")[1] + b"\n"
    assert documents.verify_quote_pdf(forged).status == documents.VerifyStatus.BAD_SIGNATURE


def test_rotated_key_keeps_old_pdfs_genuine(chinese_quote, signing_key):
    old = documents.quote_pdf(quote=chinese_quote).content
    signing.write_private_key(force=True)  # rotation: the old fingerprint stays trusted
    assert documents.verify_quote_pdf(old).ok


def test_an_older_revision_is_genuine_but_superseded(chinese_quote, sales_team, signing_key):
    rep = sales_team["rep"]
    services.quote_send(actor=rep, quote=chinese_quote)
    first = documents.quote_pdf(quote=chinese_quote).content
    services.quote_revise(actor=rep, quote=chinese_quote)
    result = documents.verify_quote_pdf(first)
    assert result.ok
    assert result.is_current is False
    assert result.quote.revision == 2


def test_without_a_key_the_pdf_says_it_is_not_signed(chinese_quote, no_signing_key):
    document = documents.quote_pdf(quote=chinese_quote, language="en")
    assert not document.signed
    assert "NOT signed" in _text(document.content)
    assert documents.verify_quote_pdf(document.content).status == documents.VerifyStatus.UNSIGNED


def test_verify_command_exit_codes(chinese_quote, signing_key, tmp_path):
    good = tmp_path / "good.pdf"
    good.write_bytes(documents.quote_pdf(quote=chinese_quote).content)
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(good.read_bytes().replace(b"/Producer", b"/Producex", 1))
    out = io.StringIO()
    call_command("verify_quote_pdf", str(good), stdout=out)
    assert "GENUINE" in out.getvalue()
    assert chinese_quote.number in out.getvalue()
    with pytest.raises(CommandError) as caught:
        call_command("verify_quote_pdf", str(good), str(bad), stdout=io.StringIO())
    assert caught.value.returncode == 1
    with pytest.raises(CommandError):
        call_command(
            "verify_quote_pdf", str(tmp_path / "missing.pdf"), stdout=io.StringIO(), stderr=io.StringIO()
        )


def test_hostile_text_is_printed_as_text(sales_team, signing_key):
    rep = sales_team["rep"]
    product = ProductFactory(name="<b>粗体</b> & <script>x</script>")
    quote = make_quote(owner=rep, lines=[line(product)], title="<font size=99>大</font>")
    text = _text(documents.quote_pdf(quote=quote).content)
    assert "<b>粗体</b>" in text
    assert "<font size=99>" in text


def test_xlsx_has_numbers_and_no_formulas(sales_team):
    from openpyxl import load_workbook

    rep = sales_team["rep"]
    product = ProductFactory(sku='=HYPERLINK("http://x")', name="=1+1", list_price=D("12.50"))
    quote = make_quote(owner=rep, lines=[line(product, "4", "0.10")])
    workbook = load_workbook(io.BytesIO(documents.quote_xlsx(quote=quote).content))
    sheet = workbook.active
    rows = list(sheet.iter_rows(values_only=True))
    line_row = next(r for r in rows if r and r[0] == 1)
    assert line_row[1] == '=HYPERLINK("http://x")'
    assert line_row[2] == "=1+1"
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
    assert line_row[4] == 4
    assert line_row[6] == 12.5
    totals = {r[9]: r[10] for r in rows if r and len(r) > 10 and r[9]}
    assert Decimal(str(totals["Total"] if "Total" in totals else totals["合计"])) == quote.total


def test_downloads_are_audited(chinese_quote, sales_team, signing_key):
    rep = sales_team["rep"]
    documents.quote_pdf_download(actor=rep, quote=chinese_quote)
    documents.quote_xlsx_download(actor=rep, quote=chinese_quote)
    formats = list(
        AuditEntry.objects.filter(object_type="sales.quote", object_id=str(chinese_quote.pk), action="export")
        .order_by("seq")
        .values_list("changes__format", flat=True)
    )
    assert formats == ["pdf", "xlsx"]
