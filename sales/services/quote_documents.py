"""Quote documents: the signed PDF, the .xlsx, and verification of a PDF (R5.2.1, R7.1.4).

PDF
    Built with reportlab in a CJK TrueType font embedded as a subset, so Chinese shows on any
    viewer, including ones without Chinese fonts. The font is WenQuanYi Micro Hei (Apache-2.0 /
    GPLv3 with font exception) from the PyPI package ``paperang-p2-fonts-cjk``, so ``pip install``
    brings it on Linux and Windows alike; ``SALES_QUOTE_FONT_PATH`` names another TrueType font
    (.ttf, or the first face of a .ttc with TrueType outlines such as C:\\Windows\\Fonts\\msyh.ttc).
    The output is deterministic for a given quote and language (reportlab's invariant mode).

Signature
    The PDF bytes (the *body*) are hashed with SHA-256; a JSON payload naming the quote, its
    revision, the digest, the time and the signing key is signed with the platform's Ed25519 key
    (crm.core.audit.signing, the key that signs audit checkpoints; the message carries its own
    domain prefix so a quote signature can never pass for a checkpoint one). The signature is
    appended as one PDF comment line after ``%%EOF``::

        %ECRM-SIGNATURE <base64url(payload)>.<base64url(signature)>

    PDF readers ignore it; ``verify_quote_pdf`` (the verify page and ``manage.py verify_quote_pdf``)
    checks that the line is the last thing in the file, the key is trusted (the current key or a
    retired one still listed, as for checkpoints), the signature is valid and the body's digest
    matches. Any change to the file -- an edited amount, an appended incremental update, a resave
    -- breaks one of these.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import io
import json
import logging
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from xml.sax.saxutils import escape

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from crm.core.audit import signing
from crm.core.audit.models import AuditAction
from crm.core.audit.services import audit_record
from crm.core.money import format_money
from sales.models import Quote

logger = logging.getLogger(__name__)

__all__ = [
    "Document",
    "PdfVerification",
    "VerifyStatus",
    "font_path",
    "issuer_name",
    "quote_pdf",
    "quote_pdf_download",
    "quote_xlsx",
    "quote_xlsx_download",
    "verify_quote_pdf",
    "verify_url",
]

FONT_NAME = "CRMQuoteCJK"
SIGNATURE_MARK = b"%ECRM-SIGNATURE "
SIGNATURE_DOMAIN = b"ecrm-quote-pdf-v1\n"
MAX_PDF_BYTES = 10 * 1024 * 1024
PDF_MEDIA_TYPE = "application/pdf"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class Document:
    content: bytes
    filename: str
    digest: str = ""  # SHA-256 (hex) of the signed body (PDF)
    signed: bool = False
    key_id: str = ""


# Settings ----------------------------------------------------------------------------------------


def issuer_name() -> str:
    return str(getattr(settings, "SALES_QUOTE_ISSUER", "") or _("E-commerce CRM"))


def verify_url() -> str:
    path = reverse("sales:quote-verify")
    base = (getattr(settings, "SITE_URL", "") or "").rstrip("/")
    return f"{base}{path}"


def font_path() -> Path:
    """The TrueType font embedded in quote PDFs (SALES_QUOTE_FONT_PATH, else the packaged one)."""
    configured = getattr(settings, "SALES_QUOTE_FONT_PATH", "") or ""
    if configured:
        return Path(configured)
    try:
        import paperang_p2_fonts_cjk
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise ImproperlyConfigured(
            "No CJK font for quote PDFs: install paperang-p2-fonts-cjk or set SALES_QUOTE_FONT_PATH"
        ) from exc
    return Path(paperang_p2_fonts_cjk.__file__).parent / "fonts" / "wqy-microhei.ttc"


_font_lock = threading.Lock()
_font_registered: Path | None = None


def register_font() -> str:
    """Register the CJK font with reportlab once per process; returns its name."""
    global _font_registered
    path = font_path()
    if _font_registered == path:
        return FONT_NAME
    with _font_lock:
        if _font_registered != path:
            try:
                font = TTFont(FONT_NAME, str(path), subfontIndex=0)
            except (OSError, TTFError) as exc:
                raise ImproperlyConfigured(
                    f"Quote PDF font {path} cannot be used ({exc}): it must be a TrueType .ttf or .ttc"
                ) from exc
            pdfmetrics.registerFont(font)
            _font_registered = path
    return FONT_NAME


# PDF ---------------------------------------------------------------------------------------------


def _percent(rate: Decimal) -> str:
    value = (rate * 100).quantize(Decimal("0.01")).normalize()
    return f"{value:f}%"


def _quantity(value: Decimal) -> str:
    text = f"{value.normalize():f}"
    return text


def _local_date(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        value = timezone.localtime(value).date()
    return value.isoformat()


def _styles(font: str) -> dict:

    base = ParagraphStyle("base", fontName=font, fontSize=9, leading=12, wordWrap="CJK")
    return {
        "base": base,
        "small": ParagraphStyle(
            "small", parent=base, fontSize=7.5, leading=10, textColor=colors.HexColor("#555555")
        ),
        "title": ParagraphStyle("title", parent=base, fontSize=18, leading=24),
        "issuer": ParagraphStyle("issuer", parent=base, fontSize=11, leading=15),
        "right": ParagraphStyle("right", parent=base, alignment=TA_RIGHT),
        "total": ParagraphStyle("total", parent=base, fontSize=11, leading=15, alignment=TA_RIGHT),
        "head": ParagraphStyle("head", parent=base, textColor=colors.white),
        "head_right": ParagraphStyle("head_right", parent=base, textColor=colors.white, alignment=TA_RIGHT),
    }


def _p(text, style) -> object:

    return Paragraph(escape(str(text or "")).replace("\n", "<br/>"), style)


def _build_pdf(quote: Quote, *, key_id: str, signed: bool) -> bytes:

    font = register_font()
    styles = _styles(font)
    currency = quote.currency
    language = translation.get_language()

    def money(amount) -> str:
        return format_money(amount, currency, language)

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=22 * mm,
        title=_("Quote %(number)s") % {"number": quote.number},
        author=issuer_name(),
        subject=quote.title or quote.number,
        creator="E-commerce CRM",
        invariant=1,
    )
    story = [
        _p(issuer_name(), styles["issuer"]),
        _p(_("Quotation"), styles["title"]),
        Spacer(1, 3 * mm),
    ]
    owner = quote.owner
    info = [
        (_("Quote number"), quote.number, _("Revision"), str(quote.revision)),
        (_("Customer"), quote.customer.name, _("Date"), _local_date(quote.sent_at or quote.updated_at)),
        (
            _("Contact person"),
            quote.contact.name if quote.contact_id else "—",
            _("Valid until"),
            _local_date(quote.valid_until),
        ),
        (
            _("Sales representative"),
            owner.get_display_name() if owner else "—",
            _("Currency"),
            currency,
        ),
    ]
    if owner is not None and owner.email:
        info.append((_("E-mail"), owner.email, "", ""))
    if quote.title:
        info.insert(0, (_("Subject"), quote.title, "", ""))
    info_table = Table(
        [
            [_p(a, styles["small"]), _p(b, styles["base"]), _p(c, styles["small"]), _p(d, styles["base"])]
            for a, b, c, d in info
        ],
        colWidths=[33 * mm, 67 * mm, 25 * mm, 55 * mm],
    )
    info_table.setStyle(
        TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("BOTTOMPADDING", (0, 0), (-1, -1), 2)])
    )
    story += [info_table, Spacer(1, 5 * mm)]

    widths = [8 * mm, 26 * mm, 58 * mm, 20 * mm, 24 * mm, 20 * mm, 24 * mm]
    padding = 12  # Table's default left + right cell padding, in points

    def cell(text, column: int, style):
        """Plain text when it fits its column (cheap to lay out), else a wrapping Paragraph."""
        text = str(text or "")
        if "\n" not in text and stringWidth(text, font, style.fontSize) <= widths[column] - padding:
            return text
        return _p(text, style)

    head = ["#", _("SKU"), _("Product"), _("Quantity"), _("Unit price"), _("Discount"), _("Amount")]
    rows = [[cell(label, i, styles["head"]) for i, label in enumerate(head)]]
    for line in quote.lines.select_related("product"):
        name = line.product.name
        if line.description:
            name = f"{name}\n{line.description}"
        rows.append(
            [
                str(line.position),
                cell(line.product.sku, 1, styles["base"]),
                cell(name, 2, styles["base"]),
                cell(f"{_quantity(line.quantity)} {line.product.unit}", 3, styles["right"]),
                cell(money(line.unit_price), 4, styles["right"]),
                cell(_percent(line.discount_rate) if line.discount_rate else "—", 5, styles["right"]),
                cell(money(line.net_amount + line.tax_amount), 6, styles["right"]),
            ]
        )
    lines_table = Table(rows, colWidths=widths, repeatRows=1)
    lines_table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), font, 9, 12),
                ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#1f3b57")),
                ("ALIGN", (3, 0), (-1, -1), "RIGHT"),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.HexColor("#cccccc")),
                ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f5f7fa")]),
            ]
        )
    )
    story += [lines_table, Spacer(1, 4 * mm)]

    totals = [
        (_("Goods"), money(quote.subtotal)),
        (_("Discount"), "-" + money(quote.discount_total) if quote.discount_total else money(0)),
        (_("Tax included"), money(quote.tax_total)),
    ]
    if quote.order_discount_rate:
        totals.insert(1, (_("Order discount"), _percent(quote.order_discount_rate)))
    totals_rows = [[_p(label, styles["right"]), _p(value, styles["right"])] for label, value in totals]
    totals_rows.append([_p(_("Total"), styles["total"]), _p(money(quote.total), styles["total"])])
    totals_table = Table(totals_rows, colWidths=[140 * mm, 40 * mm])
    totals_table.setStyle(TableStyle([("LINEABOVE", (0, -1), (-1, -1), 0.75, colors.black)]))
    story += [totals_table, Spacer(1, 6 * mm)]
    story.append(_p(_("Prices include VAT at the rate of each product."), styles["small"]))
    if quote.terms:
        story += [Spacer(1, 4 * mm), _p(_("Terms"), styles["issuer"]), _p(quote.terms, styles["base"])]

    if signed:
        footer = _(
            "Digitally signed (Ed25519, key %(key)s…). Verify this file at %(url)s "
            "or with “manage.py verify_quote_pdf”. Any change to the file voids the signature."
        ) % {"key": key_id[:16], "url": verify_url()}
    else:
        footer = _("This copy is NOT signed: no signing key is configured (manage.py create_audit_key).")
    page_label = _("%(number)s revision %(revision)s · page %%(page)s") % {
        "number": quote.number,
        "revision": quote.revision,
    }

    def on_page(canvas, document) -> None:
        canvas.saveState()
        canvas.setFont(font, 7)
        canvas.setFillColor(colors.HexColor("#555555"))
        width = A4[0] - 30 * mm

        y = 14 * mm
        for text in simpleSplit(footer, font, 7, width):
            canvas.drawString(15 * mm, y, text)
            y -= 9
        canvas.drawRightString(A4[0] - 15 * mm, 7 * mm, page_label % {"page": document.page})
        canvas.restoreState()

    doc.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return buffer.getvalue()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: bytes | str) -> bytes:
    if isinstance(text, str):
        text = text.encode("ascii")
    return base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))


def _public_raw(public_key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _signature_line(body: bytes, quote: Quote, key) -> bytes:
    public_key = key.public_key()
    payload = {
        "v": 1,
        "alg": "Ed25519",
        "doc": "quote",
        "number": quote.number,
        "revision": quote.revision,
        "sha256": hashlib.sha256(body).hexdigest(),
        "signed_at": timezone.now().astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "kid": signing.fingerprint(public_key),
        "pk": _b64(_public_raw(public_key)),
    }
    payload_bytes = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("ascii")
    signature = key.sign(SIGNATURE_DOMAIN + payload_bytes)
    return SIGNATURE_MARK + f"{_b64(payload_bytes)}.{_b64(signature)}".encode("ascii") + b"\n"


def quote_pdf(*, quote: Quote, language: str | None = None) -> Document:
    """The quote as a signed PDF (unsigned, with a visible notice, when no key is configured)."""
    key = signing.load_private_key()
    key_id = signing.fingerprint(key.public_key()) if key is not None else ""
    with translation.override(language or settings.LANGUAGE_CODE):
        body = _build_pdf(quote, key_id=key_id, signed=key is not None)
    if not body.endswith(b"\n"):
        body += b"\n"
    digest = hashlib.sha256(body).hexdigest()
    if key is None:
        logger.warning("Quote %s: PDF not signed, no signing key at %s", quote.number, signing.key_path())
        content = body
    else:
        content = body + _signature_line(body, quote, key)
    return Document(
        content=content,
        filename=f"{quote.number}-r{quote.revision}.pdf",
        digest=digest,
        signed=key is not None,
        key_id=key_id,
    )


@transaction.atomic
def quote_pdf_download(*, actor, quote: Quote, language: str | None = None) -> Document:
    """The signed PDF for a user who may see the quote; recorded as an export in the ledger."""
    document = quote_pdf(quote=quote, language=language)
    audit_record(
        action=AuditAction.EXPORT,
        actor=actor,
        obj=quote,
        changes={"format": "pdf", "revision": quote.revision, "pdf_sha256": document.digest},
    )
    return document


# Verification ------------------------------------------------------------------------------------


class VerifyStatus:
    GENUINE = "genuine"
    MODIFIED = "modified"
    UNSIGNED = "unsigned"
    UNTRUSTED_KEY = "untrusted_key"
    BAD_SIGNATURE = "bad_signature"
    NOT_PDF = "not_pdf"


STATUS_MESSAGES = {
    VerifyStatus.GENUINE: gettext_lazy("Genuine: this PDF was issued by this CRM and has not been changed."),
    VerifyStatus.MODIFIED: gettext_lazy(
        "Changed: the signature is genuine but the file was altered after it was signed."
    ),
    VerifyStatus.UNSIGNED: gettext_lazy("Not signed: this PDF carries no signature of this CRM."),
    VerifyStatus.UNTRUSTED_KEY: gettext_lazy(
        "Unknown signer: the PDF was signed with a key this CRM does not trust."
    ),
    VerifyStatus.BAD_SIGNATURE: gettext_lazy("Forged: the signature does not match its content."),
    VerifyStatus.NOT_PDF: gettext_lazy("This is not a PDF file."),
}


@dataclass
class PdfVerification:
    status: str
    number: str = ""
    revision: int | None = None
    digest: str = ""
    signed_at: str = ""
    key_id: str = ""
    quote: Quote | None = None
    details: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == VerifyStatus.GENUINE

    @property
    def message(self) -> str:
        return str(STATUS_MESSAGES[self.status])

    @property
    def is_current(self) -> bool | None:
        """True: the current revision of the quote; False: an older one; None: quote unknown."""
        if self.quote is None or self.revision is None:
            return None
        return self.quote.revision == self.revision


def _split_signature(data: bytes) -> tuple[bytes, bytes] | None:
    """(body, token) when the last line of the file is a signature line, else None."""
    end = len(data.rstrip(b"\r\n"))
    start = data.rfind(b"\n" + SIGNATURE_MARK, 0, end)
    if start < 0:
        return None
    return data[: start + 1], data[start + 1 + len(SIGNATURE_MARK) : end]


def verify_quote_pdf(data: bytes) -> PdfVerification:
    """Is ``data`` a quote PDF issued by this CRM and unchanged since? (R7.1.4)"""
    if not data.startswith(b"%PDF-"):
        return PdfVerification(status=VerifyStatus.NOT_PDF)
    parts = _split_signature(data)
    if parts is None:
        return PdfVerification(status=VerifyStatus.UNSIGNED)
    body, token = parts
    if b"\n" in token or b"\r" in token:
        # Something was appended after the signature line (e.g. an incremental update).
        return PdfVerification(status=VerifyStatus.MODIFIED, details=["data after the signature"])
    try:
        payload_part, signature_part = token.split(b".")
        payload_bytes = _unb64(payload_part)
        signature = _unb64(signature_part)
        payload = json.loads(payload_bytes)
        number, revision = str(payload["number"]), int(payload["revision"])
        expected, key_id = str(payload["sha256"]), str(payload["kid"])
        public_raw = _unb64(payload["pk"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, json.JSONDecodeError):
        return PdfVerification(status=VerifyStatus.BAD_SIGNATURE, details=["unreadable signature line"])
    result = PdfVerification(
        status=VerifyStatus.BAD_SIGNATURE,
        number=number[:30],
        revision=revision,
        digest=hashlib.sha256(body).hexdigest(),
        signed_at=str(payload.get("signed_at", ""))[:30],
        key_id=key_id[:64],
    )
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        public_key = Ed25519PublicKey.from_public_bytes(public_raw)
    except ValueError:
        return result
    if signing.fingerprint(public_key) != key_id:
        return result
    if key_id.lower() not in signing.trusted_key_ids():
        result.status = VerifyStatus.UNTRUSTED_KEY
        return result
    try:
        public_key.verify(signature, SIGNATURE_DOMAIN + payload_bytes)
    except InvalidSignature:
        return result
    result.quote = Quote.objects.filter(number=number).first()
    if result.digest != expected:
        result.status = VerifyStatus.MODIFIED
        return result
    result.status = VerifyStatus.GENUINE
    return result


# Spreadsheet -------------------------------------------------------------------------------------


def _text_cell(ws, row: int, column: int, value) -> None:
    cell = ws.cell(row=row, column=column)
    cell.value = "" if value is None else str(value)
    cell.data_type = "s"  # never a formula, whatever the text starts with


def quote_xlsx(*, quote: Quote) -> Document:
    """The quote as an .xlsx workbook: header facts, one row per line with numbers as numbers,
    and the totals. Text cells are stored as text (no formula injection)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = str(_("Quote"))[:31]
    facts = [
        (_("Quote number"), quote.number),
        (_("Revision"), quote.revision),
        (_("Subject"), quote.title),
        (_("Customer"), quote.customer.name),
        (_("Contact person"), quote.contact.name if quote.contact_id else ""),
        (_("Sales representative"), quote.owner.get_display_name() if quote.owner_id else ""),
        (_("Valid until"), quote.valid_until),
        (_("Currency"), quote.currency),
        (_("Status"), quote.get_status_display()),
    ]
    row = 1
    for label, value in facts:
        _text_cell(ws, row, 1, label)
        ws.cell(row=row, column=1).font = Font(bold=True)
        if isinstance(value, int | datetime.date):
            ws.cell(row=row, column=2, value=value)
        else:
            _text_cell(ws, row, 2, value)
        row += 1
    row += 1
    headers = [
        _("Position"),
        _("SKU"),
        _("Product"),
        _("Description"),
        _("Quantity"),
        _("Unit"),
        _("Unit price"),
        _("Discount"),
        _("Tax rate"),
        _("Tax"),
        _("Amount"),
    ]
    for column, label in enumerate(headers, start=1):
        _text_cell(ws, row, column, label)
        ws.cell(row=row, column=column).font = Font(bold=True)
    money_format = "#,##0.00"
    for line in quote.lines.select_related("product"):
        row += 1
        ws.cell(row=row, column=1, value=line.position)
        _text_cell(ws, row, 2, line.product.sku)
        _text_cell(ws, row, 3, line.product.name)
        _text_cell(ws, row, 4, line.description)
        ws.cell(row=row, column=5, value=line.quantity).number_format = "0.###"
        _text_cell(ws, row, 6, line.product.unit)
        ws.cell(row=row, column=7, value=line.unit_price).number_format = money_format
        ws.cell(row=row, column=8, value=line.discount_rate).number_format = "0.00%"
        ws.cell(row=row, column=9, value=line.tax_rate).number_format = "0%"
        ws.cell(row=row, column=10, value=line.tax_amount).number_format = money_format
        ws.cell(row=row, column=11, value=line.net_amount + line.tax_amount).number_format = money_format
    row += 2
    for label, value in (
        (_("Goods"), quote.subtotal),
        (_("Discount"), quote.discount_total),
        (_("Tax included"), quote.tax_total),
        (_("Total"), quote.total),
    ):
        _text_cell(ws, row, 10, label)
        ws.cell(row=row, column=10).font = Font(bold=True)
        ws.cell(row=row, column=11, value=value).number_format = money_format
        row += 1
    if quote.terms:
        row += 1
        _text_cell(ws, row, 1, _("Terms"))
        _text_cell(ws, row, 2, quote.terms)
    for column, width in zip("ABCDEFGHIJK", (14, 16, 30, 24, 10, 8, 12, 10, 9, 12, 14), strict=True):
        ws.column_dimensions[column].width = width
    buffer = io.BytesIO()
    wb.save(buffer)
    return Document(content=buffer.getvalue(), filename=f"{quote.number}-r{quote.revision}.xlsx")


@transaction.atomic
def quote_xlsx_download(*, actor, quote: Quote, language: str | None = None) -> Document:
    with translation.override(language or translation.get_language() or settings.LANGUAGE_CODE):
        document = quote_xlsx(quote=quote)
    audit_record(
        action=AuditAction.EXPORT,
        actor=actor,
        obj=quote,
        changes={"format": "xlsx", "revision": quote.revision},
    )
    return document
