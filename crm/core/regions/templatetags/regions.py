"""{% load regions %}: ``region|region_name``, ``region|region_full_name``, ``{% region_full_name r %}``.

Each accepts a Region or a 6-digit code and uses the active language; parents come from the cache.
"""

from django import template
from django.utils.translation import get_language

from crm.core.regions import selectors

register = template.Library()


@register.filter
def region_name(value, language=None) -> str:
    region = selectors.get_region(value)
    return region.name_for(language or get_language()) if region else ""


@register.filter(name="region_full_name")
def region_full_name_filter(value, language=None) -> str:
    region = selectors.get_region(value)
    return region.full_name_for(language or get_language()) if region else ""


@register.simple_tag
def region_full_name(value, language=None) -> str:
    return region_full_name_filter(value, language)
