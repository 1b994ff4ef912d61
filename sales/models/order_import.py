"""Named column mappings of the e-commerce order import (R5.1.3 automatic collection).

Two templates ship in code (sales.services.order_import.templates: the generic one and the
platform export with Chinese headers); users save further ones here.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from crm.core.models import TimeStampedModel

from .orders import Channel


class OrderImportTemplate(TimeStampedModel):
    """A saved mapping {column title: order import field}, with the channel its files come from."""

    name = models.CharField(_("name"), max_length=80, unique=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=pgettext_lazy("saved item", "owner"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    channel = models.CharField(
        _("channel"),
        max_length=15,
        choices=Channel.choices,
        blank=True,
        help_text=_("The channel of the orders when the file has no channel column."),
    )
    mapping = models.JSONField(_("column mapping"), default=dict)

    class Meta:
        verbose_name = _("order import template")
        verbose_name_plural = _("order import templates")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
