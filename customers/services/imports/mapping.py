"""Column mapping of the customer import: the fields a column can go to, Chinese and English header
synonyms recognised automatically, the checks of a mapping, and named mapping templates."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from crm.core.audit.models import AuditAction
from crm.core.audit.services import audit_record

from ...models import ImportTemplate

# Fields and header synonyms --------------------------------------------------------------------

FIELD_CHOICES = [
    ("", _("(ignore this column)")),
    ("name", pgettext_lazy("customer", "Name")),
    ("kind", _("Kind (person or company)")),
    ("gender", _("Gender")),
    ("birthday", _("Birthday")),
    ("level", _("Level")),
    ("stage", _("Lifecycle stage")),
    ("source", _("Source")),
    ("phone", _("Phone (several columns allowed)")),
    ("email", _("E-mail (several columns allowed)")),
    ("wechat_id", _("WeChat ID")),
    ("platform", _("Platform")),
    ("account_id", _("Platform account ID")),
    ("province", _("Province")),
    ("city", _("City")),
    ("district", _("District")),
    ("street", _("Street address")),
    ("postcode", _("Postcode")),
    ("tags", _("Tags (separated by commas)")),
    ("notes", _("Notes")),
    ("owner", _("Owner (username or name)")),
]
FIELD_LABELS = dict(FIELD_CHOICES)
FIELDS = frozenset(key for key, _label in FIELD_CHOICES if key)
MULTI_FIELDS = frozenset({"phone", "email"})

SYNONYMS: dict[str, tuple[str, ...]] = {
    "name": (
        "姓名",
        "客户名称",
        "客户名",
        "客户姓名",
        "名称",
        "公司名称",
        "name",
        "customername",
        "customer",
    ),
    "kind": ("类型", "客户类型", "kind", "type", "customertype"),
    "gender": ("性别", "gender", "sex"),
    "birthday": ("生日", "出生日期", "birthday", "dateofbirth", "birthdate", "dob"),
    "level": ("等级", "会员等级", "客户等级", "level", "memberlevel", "tier"),
    "stage": ("阶段", "生命周期", "客户阶段", "stage", "lifecyclestage"),
    "source": ("来源", "渠道", "客户来源", "source", "channel"),
    "phone": (
        "手机",
        "手机号",
        "手机号码",
        "电话",
        "联系电话",
        "电话号码",
        "固话",
        "座机",
        "phone",
        "mobile",
        "telephone",
        "tel",
        "phonenumber",
        "mobilephone",
        "phone2",
        "手机2",
        "电话2",
    ),
    "email": ("邮箱", "电子邮件", "电子邮箱", "邮件", "email", "e-mail", "emailaddress", "mail"),
    "wechat_id": ("微信", "微信号", "wechat", "wechatid", "weixin"),
    "platform": ("平台", "店铺平台", "platform"),
    "account_id": (
        "买家账号",
        "买家会员名",
        "买家昵称",
        "平台账号",
        "会员名",
        "account",
        "accountid",
        "buyeraccount",
        "buyerid",
    ),
    "province": ("省", "省份", "所在省", "province"),
    "city": ("市", "城市", "所在市", "所在城市", "city"),
    "district": ("区", "区县", "县区", "区/县", "所在区", "district", "county"),
    "street": ("详细地址", "地址", "街道地址", "收货地址", "address", "street", "streetaddress"),
    "postcode": ("邮编", "邮政编码", "postcode", "zip", "zipcode", "postalcode"),
    "tags": ("标签", "tags", "tag"),
    "notes": ("备注", "说明", "notes", "note", "remarks", "remark", "comment", "comments"),
    "owner": ("负责人", "归属人", "所属销售", "owner", "salesrep"),
}
_SYNONYM_INDEX = {word: key for key, words in SYNONYMS.items() for word in words}
_HEADER_JUNK = re.compile(r"[\s*＊:：_]+|[(（][^)）]*[)）]")


def normalize_header(text) -> str:
    """ "手机号（必填）*" -> "手机号"; "E-mail Address" -> "e-mailaddress"."""
    return _HEADER_JUNK.sub("", str(text or "")).lower()


def auto_field(header) -> str:
    return _SYNONYM_INDEX.get(normalize_header(header), "")


def auto_mapping(headers: list[str], template: dict | None = None) -> list[str]:
    """The field for each column: the template's choice for that header, else the synonym's.

    A single-valued field goes to its first column only; phones and e-mails may take several.
    """
    mapping: list[str] = []
    taken: set[str] = set()
    for header in headers:
        if template and header in template:
            fieldname = template[header] if template[header] in FIELDS else ""
        else:
            fieldname = auto_field(header)
        if fieldname and fieldname not in MULTI_FIELDS and fieldname in taken:
            fieldname = ""
        taken.add(fieldname)
        mapping.append(fieldname)
    return mapping


def validate_mapping(mapping: list[str]) -> None:
    """Raise ValidationError unless the name is mapped and single-valued fields appear once."""
    errors = []
    if "name" not in mapping:
        errors.append(ValidationError(_("Choose the column that holds the customer's name."), code="no_name"))
    for key in sorted(FIELDS - MULTI_FIELDS):
        if mapping.count(key) > 1:
            errors.append(
                ValidationError(
                    _("Only one column can be mapped to %(field)s."),
                    code="repeated",
                    params={"field": FIELD_LABELS[key]},
                )
            )
    if "account_id" in mapping and "platform" not in mapping and "source" not in mapping:
        errors.append(
            ValidationError(
                _("Map a Platform column (or a Source column) to import platform account IDs."),
                code="no_platform",
            )
        )
    if errors:
        raise ValidationError(errors)


# Templates --------------------------------------------------------------------------------------


@transaction.atomic
def import_template_save(*, actor, name: str, headers: list[str], mapping: list[str]) -> ImportTemplate:
    """Save (or overwrite one's own) named mapping {column header: field}."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": gettext("Give the template a name.")})
    if len(name) > ImportTemplate._meta.get_field("name").max_length:
        raise ValidationError({"name": gettext("The name is too long.")})
    value = dict(zip(headers, mapping, strict=True))
    template = ImportTemplate.objects.select_for_update().filter(name=name).first()
    if template is not None and template.owner_id != actor.pk:
        raise ValidationError({"name": gettext("Another user already has a template with this name.")})
    if template is None:
        template = ImportTemplate.objects.create(name=name, owner=actor, mapping=value)
        audit_record(action=AuditAction.CREATE, actor=actor, obj=template, changes={"mapping": value})
    elif template.mapping != value:
        template.mapping = value
        template.save(update_fields=["mapping", "updated_at"])
        audit_record(action=AuditAction.UPDATE, actor=actor, obj=template, changes={"mapping": value})
    return template


def import_template_list_for_user(*, user):
    return ImportTemplate.objects.select_related("owner").order_by("name")


def import_template_get_for_delete(*, user, pk) -> ImportTemplate:
    qs = ImportTemplate.objects.all()
    if not user.has_perm("customers.delete_importtemplate"):
        qs = qs.filter(owner=user)
    try:
        return qs.get(pk=pk)
    except (ImportTemplate.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404 from exc


@transaction.atomic
def import_template_delete(*, actor, template: ImportTemplate) -> None:
    audit_record(action=AuditAction.DELETE, actor=actor, obj=template)
    template.delete()
