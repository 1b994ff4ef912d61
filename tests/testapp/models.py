"""Models that exist only in the test suite, to exercise the platform's shared mechanisms
(visibility, sensitive fields, audit) before the business apps have models of their own."""

from django.db import models

from crm.core.fields import BlindIndexField, EncryptedField
from crm.core.models import OwnedModel


class Record(OwnedModel):
    name = models.CharField(max_length=100)
    phone = EncryptedField(kind="phone")
    phone_index = BlindIndexField(source="phone")
    phone_last4_index = BlindIndexField(source="phone", last4=True)
    email = EncryptedField(kind="email")
    email_index = BlindIndexField(source="email")
    note = EncryptedField(kind="text")

    def __str__(self) -> str:
        return self.name
