"""The fields of an order import, how column titles map to them, and the mapping templates.

Two templates ship with the CRM (``BUILTIN_TEMPLATES``): the generic one (English or Chinese
titles, one column per field) and the typical platform export with Chinese titles (订单编号,
买家会员名, 收货人姓名, 联系手机, 收货地址, 商品编码, 商品标题, 购买数量, 商品单价, 实付金额, 订单状态,
订单创建时间, 付款时间). Users save further named templates (``OrderImportTemplate`` rows).
A template maps column titles to fields; titles it does not know are recognised by synonyms.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from crm.core.audit.models import AuditAction
from crm.core.audit.services import audit_record
from customers.services import imports as customer_imports
from sales.models import Channel, OrderImportTemplate, OrderStatus

FIELD_CHOICES = [
    ("", _("(ignore this column)")),
    ("order_number", _("Platform order number")),
    ("channel", _("Channel")),
    ("account_id", _("Buyer account on the platform")),
    ("customer_name", _("Buyer name")),
    ("recipient", pgettext_lazy("address", "Recipient")),
    ("phone", _("Phone")),
    ("address", _("Full address (province, city, district and street in one cell)")),
    ("province", _("Province")),
    ("city", _("City")),
    ("district", _("District")),
    ("street", _("Street address")),
    ("postcode", _("Postcode")),
    ("sku", _("SKU")),
    ("product_name", _("Product name")),
    ("quantity", _("Quantity")),
    ("unit_price", _("Unit price")),
    ("paid_amount", _("Amount paid for the line")),
    ("shipping", _("Shipping fee of the order")),
    ("status", _("Order status")),
    ("ordered_at", _("Ordered at")),
    ("paid_at", _("Paid at")),
    ("notes", _("Notes")),
]
FIELD_LABELS = dict(FIELD_CHOICES)
FIELDS = frozenset(key for key, _label in FIELD_CHOICES if key)
REQUIRED_FIELDS = ("order_number", "sku", "quantity")
REGION_FIELDS = ("province", "city", "district", "street")

SYNONYMS: dict[str, tuple[str, ...]] = {
    "order_number": (
        "订单编号",
        "订单号",
        "平台订单号",
        "外部订单号",
        "主订单编号",
        "ordernumber",
        "orderno",
        "orderid",
        "order",
        "externalnumber",
        "platformordernumber",
    ),
    "channel": ("渠道", "平台", "销售渠道", "店铺平台", "来源平台", "channel", "platform", "saleschannel"),
    "account_id": (
        "买家会员名",
        "买家账号",
        "买家昵称",
        "买家id",
        "会员名",
        "用户账号",
        "buyeraccount",
        "buyer",
        "buyerid",
        "buyernick",
        "account",
        "accountid",
    ),
    "customer_name": ("买家姓名", "客户姓名", "客户名称", "客户", "customername", "customer", "buyername"),
    "recipient": ("收货人姓名", "收货人", "收件人", "收件人姓名", "recipient", "consignee", "shipto"),
    "phone": (
        "联系手机",
        "手机",
        "手机号",
        "手机号码",
        "联系电话",
        "收货人手机",
        "收货人电话",
        "电话",
        "phone",
        "mobile",
        "telephone",
        "tel",
        "phonenumber",
    ),
    "address": ("收货地址", "地址", "完整地址", "收货人地址", "address", "shippingaddress", "fulladdress"),
    "province": ("省", "省份", "收货省份", "province"),
    "city": ("市", "城市", "收货城市", "city"),
    "district": ("区", "区县", "县区", "区/县", "district", "county"),
    "street": ("详细地址", "街道地址", "street", "streetaddress"),
    "postcode": ("邮编", "邮政编码", "postcode", "zip", "zipcode", "postalcode"),
    "sku": (
        "商品编码",
        "商家编码",
        "sku",
        "sku编码",
        "货号",
        "商品货号",
        "skucode",
        "productcode",
        "itemcode",
    ),
    "product_name": (
        "商品标题",
        "商品名称",
        "宝贝标题",
        "商品",
        "productname",
        "product",
        "itemname",
        "title",
    ),
    "quantity": ("购买数量", "数量", "商品数量", "件数", "quantity", "qty"),
    "unit_price": ("商品单价", "单价", "价格", "unitprice", "price"),
    "paid_amount": (
        "实付金额",
        "实付款",
        "买家实付",
        "实收金额",
        "paidamount",
        "amountpaid",
        "paid",
        "linetotal",
    ),
    "shipping": ("运费", "邮费", "买家应付邮费", "shipping", "shippingfee", "freight"),
    "status": ("订单状态", "状态", "交易状态", "status", "orderstatus"),
    "ordered_at": (
        "订单创建时间",
        "下单时间",
        "创建时间",
        "订单时间",
        "orderedat",
        "orderdate",
        "createdat",
        "ordertime",
    ),
    "paid_at": ("付款时间", "支付时间", "paidat", "paymenttime", "paidtime"),
    "notes": ("买家留言", "备注", "订单备注", "卖家备注", "notes", "note", "remark", "remarks", "comment"),
}
_SYNONYM_INDEX = {word: key for key, words in SYNONYMS.items() for word in words}

# Channels as platforms write them (天猫, 京东...), besides the codes and the labels.
CHANNEL_WORDS = {
    "天猫": Channel.TMALL,
    "天猫商城": Channel.TMALL,
    "淘宝": Channel.TAOBAO,
    "淘宝网": Channel.TAOBAO,
    "京东": Channel.JD,
    "京东商城": Channel.JD,
    "抖音": Channel.DOUYIN,
    "抖店": Channel.DOUYIN,
    "抖音小店": Channel.DOUYIN,
    "拼多多": Channel.PINDUODUO,
    "微信": Channel.WECHAT,
    "微信小程序": Channel.WECHAT,
    "小程序": Channel.WECHAT,
    "微店": Channel.WECHAT,
    "官网": Channel.OWN_SITE,
    "官方商城": Channel.OWN_SITE,
    "自有商城": Channel.OWN_SITE,
    "线下": Channel.OFFLINE,
    "门店": Channel.OFFLINE,
    "线下门店": Channel.OFFLINE,
}

# Order states as platforms write them; a state missing here is a row error naming the cell.
STATUS_WORDS = {
    "等待买家付款": OrderStatus.PENDING_PAYMENT,
    "待付款": OrderStatus.PENDING_PAYMENT,
    "未付款": OrderStatus.PENDING_PAYMENT,
    "待支付": OrderStatus.PENDING_PAYMENT,
    "买家已付款": OrderStatus.PAID,
    "已付款": OrderStatus.PAID,
    "已支付": OrderStatus.PAID,
    "等待卖家发货": OrderStatus.PAID,
    "待发货": OrderStatus.PAID,
    "卖家已发货": OrderStatus.SHIPPED,
    "已发货": OrderStatus.SHIPPED,
    "等待买家确认收货": OrderStatus.SHIPPED,
    "待收货": OrderStatus.SHIPPED,
    "交易成功": OrderStatus.COMPLETED,
    "交易完成": OrderStatus.COMPLETED,
    "已完成": OrderStatus.COMPLETED,
    "已收货": OrderStatus.COMPLETED,
    "已签收": OrderStatus.COMPLETED,
    "交易关闭": OrderStatus.CANCELLED,
    "交易已关闭": OrderStatus.CANCELLED,
    "已关闭": OrderStatus.CANCELLED,
    "已取消": OrderStatus.CANCELLED,
    "交易取消": OrderStatus.CANCELLED,
    "订单关闭": OrderStatus.CANCELLED,
    "退款中": OrderStatus.REFUND_REQUESTED,
    "申请退款": OrderStatus.REFUND_REQUESTED,
    "退款申请中": OrderStatus.REFUND_REQUESTED,
    "售后中": OrderStatus.REFUND_REQUESTED,
    "退款成功": OrderStatus.REFUNDED,
    "已退款": OrderStatus.REFUNDED,
    "全额退款": OrderStatus.REFUNDED,
}
#: The states an import may set (drafts and approvals are the CRM's own business).
IMPORTABLE_STATUSES = (
    OrderStatus.PENDING_PAYMENT,
    OrderStatus.PAID,
    OrderStatus.SHIPPED,
    OrderStatus.COMPLETED,
    OrderStatus.CANCELLED,
    OrderStatus.REFUND_REQUESTED,
    OrderStatus.REFUNDED,
)


def _lookup(choices, words: dict[str, str], allowed=None) -> dict[str, str]:
    table: dict[str, str] = {}
    for value, label in choices:
        if allowed is not None and value not in allowed:
            continue
        table[value.lower()] = value
        table[str(label).lower()] = value
    table.update({word.lower(): value for word, value in words.items()})
    return table


def channel_lookup() -> dict[str, str]:
    """{word: channel} for codes, labels in the active language and platform words."""
    return _lookup(Channel.choices, CHANNEL_WORDS)


def status_lookup() -> dict[str, str]:
    return _lookup(OrderStatus.choices, STATUS_WORDS, allowed=IMPORTABLE_STATUSES)


def normalize_header(text) -> str:
    return customer_imports.normalize_header(text)


# Templates ------------------------------------------------------------------------------------

GENERIC_COLUMNS = [
    # (English title, Chinese title, field)
    ("Order number", "订单号", "order_number"),
    ("Channel", "渠道", "channel"),
    ("Buyer account", "买家账号", "account_id"),
    ("Buyer name", "客户姓名", "customer_name"),
    ("Recipient", "收货人", "recipient"),
    ("Phone", "手机", "phone"),
    ("Province", "省份", "province"),
    ("City", "城市", "city"),
    ("District", "区县", "district"),
    ("Street", "详细地址", "street"),
    ("Postcode", "邮编", "postcode"),
    ("SKU", "SKU", "sku"),
    ("Product name", "商品名称", "product_name"),
    ("Quantity", "数量", "quantity"),
    ("Unit price", "单价", "unit_price"),
    ("Paid amount", "实付金额", "paid_amount"),
    ("Shipping", "运费", "shipping"),
    ("Status", "订单状态", "status"),
    ("Ordered at", "下单时间", "ordered_at"),
    ("Paid at", "付款时间", "paid_at"),
    ("Notes", "备注", "notes"),
]
PLATFORM_COLUMNS = [
    ("订单编号", "order_number"),
    ("买家会员名", "account_id"),
    ("收货人姓名", "recipient"),
    ("联系手机", "phone"),
    ("收货地址", "address"),
    ("商品编码", "sku"),
    ("商品标题", "product_name"),
    ("购买数量", "quantity"),
    ("商品单价", "unit_price"),
    ("实付金额", "paid_amount"),
    ("订单状态", "status"),
    ("订单创建时间", "ordered_at"),
    ("付款时间", "paid_at"),
]


@dataclass(frozen=True)
class Template:
    """A mapping template: a shipped one (``key`` "generic" or "platform") or a saved one (pk)."""

    key: str
    name: object  # str or lazy translated string
    channel: str = ""
    mapping: dict[str, str] = field(default_factory=dict)
    builtin: bool = False
    owner_id: int | None = None
    pk: int | None = None

    def field_for(self, header: str) -> str | None:
        """The field the template gives this column title (compared without spaces, * and (...))."""
        wanted = normalize_header(header)
        for title, key in self.mapping.items():
            if normalize_header(title) == wanted:
                return key if key in FIELDS else ""
        return None


BUILTIN_TEMPLATES = {
    "generic": Template(
        key="generic",
        name=_("Generic order export"),
        mapping={
            **{english: key for english, _chinese, key in GENERIC_COLUMNS},
            **{chinese: key for _english, chinese, key in GENERIC_COLUMNS},
        },
        builtin=True,
    ),
    "platform": Template(
        key="platform",
        name=_("Platform order export (Chinese titles, Tmall/Taobao style)"),
        channel=Channel.TMALL,
        mapping=dict(PLATFORM_COLUMNS),
        builtin=True,
    ),
}


def _template_from_row(row: OrderImportTemplate) -> Template:
    return Template(
        key=str(row.pk),
        name=row.name,
        channel=row.channel,
        mapping=dict(row.mapping or {}),
        owner_id=row.owner_id,
        pk=row.pk,
    )


def template_choices(*, user) -> list[tuple[str, object]]:
    """(key, name) of every template the user may apply: the shipped ones first."""
    choices = [(t.key, t.name) for t in BUILTIN_TEMPLATES.values()]
    choices += [(str(row.pk), row.name) for row in import_template_list_for_user(user=user)]
    return choices


def template_get(key) -> Template | None:
    """The template named by ``key`` ("generic", "platform" or a saved one's primary key)."""
    key = str(key or "")
    if key in BUILTIN_TEMPLATES:
        return BUILTIN_TEMPLATES[key]
    if not key.isdigit():
        return None
    row = OrderImportTemplate.objects.filter(pk=int(key)).first()
    return _template_from_row(row) if row else None


def auto_field(header) -> str:
    return _SYNONYM_INDEX.get(normalize_header(header), "")


def auto_mapping(headers: list[str], template: Template | None = None) -> list[str]:
    """The field of each column: the template's for that title, else the synonym's; a field goes
    to its first column only."""
    mapping: list[str] = []
    taken: set[str] = set()
    for header in headers:
        fieldname = template.field_for(header) if template else None
        if fieldname is None:
            fieldname = auto_field(header)
        if fieldname and fieldname in taken:
            fieldname = ""
        taken.add(fieldname)
        mapping.append(fieldname)
    return mapping


def validate_mapping(mapping: list[str], *, channel: str = "") -> None:
    """ValidationError unless the required fields are mapped, each field at most once, and the
    channel is known (a column or the upload's choice)."""
    errors = []
    for key in REQUIRED_FIELDS:
        if key not in mapping:
            errors.append(
                ValidationError(
                    _("Choose the column that holds the %(field)s."),
                    code="required",
                    params={"field": FIELD_LABELS[key]},
                )
            )
    for key in sorted(FIELDS):
        if mapping.count(key) > 1:
            errors.append(
                ValidationError(
                    _("Only one column can be mapped to %(field)s."),
                    code="repeated",
                    params={"field": FIELD_LABELS[key]},
                )
            )
    if "channel" not in mapping and channel not in Channel.values:
        errors.append(
            ValidationError(
                _("Choose the channel of the orders, or map the column that holds it."), code="no_channel"
            )
        )
    if not {"account_id", "phone", "recipient", "customer_name"} & set(mapping):
        errors.append(
            ValidationError(
                _("Map a column that identifies the buyer: buyer account, phone, buyer name or recipient."),
                code="no_buyer",
            )
        )
    if "address" in mapping and set(REGION_FIELDS) & set(mapping):
        errors.append(
            ValidationError(
                _("Map either the full address or its parts (province, city, district, street), not both."),
                code="address_twice",
            )
        )
    if errors:
        raise ValidationError(errors)


# Saved templates ------------------------------------------------------------------------------


def import_template_list_for_user(*, user):
    return OrderImportTemplate.objects.select_related("owner").order_by("name")


@transaction.atomic
def import_template_save(
    *, actor, name: str, headers: list[str], mapping: list[str], channel: str = ""
) -> OrderImportTemplate:
    """Save (or overwrite one's own) named mapping {column title: field} and its channel."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": gettext("Give the template a name.")})
    if len(name) > OrderImportTemplate._meta.get_field("name").max_length:
        raise ValidationError({"name": gettext("The name is too long.")})
    if any(str(t.name).casefold() == name.casefold() for t in BUILTIN_TEMPLATES.values()):
        raise ValidationError({"name": gettext("A template shipped with the CRM already has this name.")})
    channel = channel if channel in Channel.values else ""
    value = {header: key for header, key in zip(headers, mapping, strict=True) if key in FIELDS}
    template = OrderImportTemplate.objects.select_for_update().filter(name=name).first()
    if template is not None and template.owner_id != actor.pk:
        raise ValidationError({"name": gettext("Another user already has a template with this name.")})
    changes = {"mapping": value, "channel": channel}
    if template is None:
        template = OrderImportTemplate.objects.create(name=name, owner=actor, mapping=value, channel=channel)
        audit_record(action=AuditAction.CREATE, actor=actor, obj=template, changes=changes)
    elif template.mapping != value or template.channel != channel:
        template.mapping = value
        template.channel = channel
        template.save(update_fields=["mapping", "channel", "updated_at"])
        audit_record(action=AuditAction.UPDATE, actor=actor, obj=template, changes=changes)
    return template


def import_template_get_for_delete(*, user, pk) -> OrderImportTemplate:
    """One's own saved template (any, with sales.delete_orderimporttemplate); 404 otherwise."""
    qs = OrderImportTemplate.objects.all()
    if not user.has_perm("sales.delete_orderimporttemplate"):
        qs = qs.filter(owner=user)
    try:
        return qs.get(pk=pk)
    except (OrderImportTemplate.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404 from exc


@transaction.atomic
def import_template_delete(*, actor, template: OrderImportTemplate) -> None:
    audit_record(action=AuditAction.DELETE, actor=actor, obj=template)
    template.delete()
