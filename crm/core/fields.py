"""Model fields for sensitive data: encrypted at rest, found through blind indexes.

Usage::

    class Customer(OwnedModel):
        phone = EncryptedField(_("phone"), kind="phone", blank=True)
        phone_index = BlindIndexField(source="phone")
        phone_last4_index = BlindIndexField(source="phone", last4=True)

    Customer.objects.filter(sensitive_q(Customer, "phone", "138 1234 5678"))
    Customer.objects.filter(sensitive_q(Customer, "phone", "5678"))   # last four digits

In Python the attribute holds plaintext; the database holds only ciphertext and HMACs. Encrypted
columns cannot be filtered or ordered on (only ``isnull``); filter on the blind index instead.
Indexes are computed on save() and bulk_create(); after ``bulk_update`` or ``update()`` of an
encrypted field run ``manage.py rotate_field_keys --reindex``.
"""

from __future__ import annotations

from django.apps import apps
from django.core.exceptions import FieldError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from . import crypto


class EncryptedField(models.TextField):
    description = _("Encrypted text")
    allowed_lookups = frozenset({"isnull"})

    def __init__(self, *args, kind: str = "text", **kwargs):
        if kind not in crypto.NORMALIZERS:
            raise ValueError(f"Unknown sensitive kind {kind!r}")
        self.kind = kind
        kwargs.setdefault("blank", True)
        kwargs.setdefault("default", "")
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["kind"] = self.kind
        return name, path, args, kwargs

    @property
    def crypto_context(self) -> str:
        return f"{self.model._meta.label_lower}.{self.name}"

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        return crypto.decrypt(value, context=self.crypto_context)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return crypto.encrypt(str(value).strip(), context=self.crypto_context)

    def get_lookup(self, lookup_name):
        if lookup_name not in self.allowed_lookups:
            raise FieldError(
                f"{self.model.__name__}.{self.name} is encrypted: filter on its BlindIndexField "
                f"(see crm.core.fields.sensitive_q), not with '{lookup_name}'."
            )
        return super().get_lookup(lookup_name)

    def display_for(self, user, value) -> str:
        return crypto.display_sensitive(user, value, self.kind)


class BlindIndexField(models.CharField):
    """HMAC of the normalised value of another field (or of its last four digits)."""

    description = _("Blind index")

    def __init__(self, *args, source: str, last4: bool = False, **kwargs):
        self.source = source
        self.last4 = last4
        kwargs.setdefault("max_length", 32)
        kwargs.setdefault("db_index", True)
        kwargs.setdefault("editable", False)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("default", "")
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["source"] = self.source
        if self.last4:
            kwargs["last4"] = True
        for key, default in (
            ("max_length", 32),
            ("db_index", True),
            ("editable", False),
            ("blank", True),
            ("default", ""),
        ):
            if kwargs.get(key) == default:
                kwargs.pop(key, None)
        return name, path, args, kwargs

    @property
    def source_field(self) -> EncryptedField:
        return self.model._meta.get_field(self.source)

    def compute(self, plaintext: str) -> str:
        return index_value(self.source_field.kind, plaintext, last4=self.last4)

    def pre_save(self, model_instance, add):
        value = self.compute(getattr(model_instance, self.source) or "")
        setattr(model_instance, self.attname, value)
        return value


def index_value(kind: str, plaintext: str, *, last4: bool = False) -> str:
    """The blind index of ``plaintext`` as stored by a BlindIndexField of a ``kind`` field.

    The purpose depends only on the kind, so the same phone gives the same index in every table
    (customers, leads, contacts), which is what duplicate detection across tables needs.
    """
    if last4:
        # The last four digits of the raw text: normalising "0004" alone would give "+04".
        return crypto.blind_index(crypto.last_four_digits(plaintext), purpose=f"{kind}-last4")
    return crypto.blind_index(crypto.NORMALIZERS[kind](plaintext), purpose=kind)


def blind_index_fields(model, source: str) -> dict[bool, BlindIndexField]:
    """The blind index fields of ``model`` that index ``source``, keyed by ``last4``."""
    return {
        f.last4: f for f in model._meta.get_fields() if isinstance(f, BlindIndexField) and f.source == source
    }


def sensitive_q(model, field_name: str, term: str, *, prefix: str = "") -> Q:
    """A filter finding rows whose encrypted ``field_name`` equals ``term``.

    For phones, a term of exactly four digits matches the last four digits when the model has a
    last-four index. A blank term matches nothing.
    """
    field = model._meta.get_field(field_name)
    indexes = blind_index_fields(model, field_name)
    if False not in indexes:
        raise FieldError(f"{model.__name__}.{field_name} has no BlindIndexField")
    term = (term or "").strip()
    if field.kind == "phone" and True in indexes and term.isdigit() and len(term) == 4:
        # Checked before normalising: "0086..." handling would turn "0004" into "+04".
        return Q(**{f"{prefix}{indexes[True].name}": index_value("phone", term, last4=True)})
    normalized = crypto.NORMALIZERS[field.kind](term)
    if not normalized:
        return Q(pk__in=[])
    return Q(**{f"{prefix}{indexes[False].name}": index_value(field.kind, normalized)})


def fields_by_model(field_class) -> dict:
    """Every concrete model that has fields of ``field_class``, with those fields."""
    result = {}
    for model in apps.get_models():
        fields = [f for f in model._meta.concrete_fields if isinstance(f, field_class)]
        if fields:
            result[model] = fields
    return result


def encrypted_fields_by_model() -> dict:
    return fields_by_model(EncryptedField)
