"""Administrative regions of China: province (level 1) -> city (level 2) -> district (level 3).

The rows come from ``data/regions.csv`` (see ``data/README.md`` and ``data/build_regions.py``), loaded
by a data migration and refreshed by ``manage.py load_regions``. They never change at runtime, so
reads go through the cached helpers in ``selectors.py``.

Hierarchy rules (documented in full in ``data/build_regions.py``):

* Municipalities (北京, 天津, 上海, 重庆) have one city named like the province: 上海市 -> 上海市 -> 浦东新区.
  Hong Kong and Macao follow the same pattern (香港特别行政区 -> 香港特别行政区 -> 湾仔区).
* County-level cities and counties administered directly by a province (codes ``XX90ZZ`` such as
  429004 仙桃市) are cities (level 2) directly under the province, with no districts.
* Some cities have no districts at all (东莞市, 中山市, 儋州市, 嘉峪关市): they are leaves at level 2.

So an address is complete when it points at a *leaf* region: a district, or a city without districts.
"""

from django.db import models
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _


class Region(models.Model):
    class Level(models.IntegerChoices):
        PROVINCE = 1, _("Province")
        CITY = 2, _("City")
        DISTRICT = 3, _("District")

    code = models.CharField(_("code"), max_length=6, primary_key=True)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
    )
    level = models.PositiveSmallIntegerField(_("level"), choices=Level.choices)
    name_zh = models.CharField(_("Chinese name"), max_length=50)
    name_en = models.CharField(_("English name"), max_length=100)
    sort_order = models.PositiveIntegerField(_("sort order"), default=0)

    class Meta:
        verbose_name = _("region")
        verbose_name_plural = _("regions")
        ordering = ["sort_order", "code"]
        indexes = [
            models.Index(fields=["parent", "sort_order"], name="regions_parent_sort_idx"),
            models.Index(fields=["level", "sort_order"], name="regions_level_sort_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        """The name in the active language (Chinese for zh-*, English otherwise)."""
        return self.name_for(get_language())

    def name_for(self, language: str | None) -> str:
        if not language or language.lower().startswith("zh"):
            return self.name_zh
        return self.name_en or self.name_zh

    @property
    def path(self) -> list["Region"]:
        """[province, city, district] down to this region; parents come from the cache (no query)."""
        from .selectors import get_region

        chain = [self]
        parent_code = self.parent_id
        while parent_code:
            parent = get_region(parent_code)
            if parent is None:
                break
            chain.insert(0, parent)
            parent_code = parent.parent_id
        return chain

    @property
    def full_name(self) -> str:
        """ "浙江省 杭州市 西湖区" / "Xihu District, Hangzhou, Zhejiang" (active language)."""
        return self.full_name_for(get_language())

    def full_name_for(self, language: str | None) -> str:
        names = []
        for region in self.path:
            name = region.name_for(language)
            if not names or names[-1] != name:  # "上海市 上海市 浦东新区" reads "上海市 浦东新区"
                names.append(name)
        if not language or language.lower().startswith("zh"):
            return " ".join(names)
        return ", ".join(reversed(names))

    @property
    def is_leaf(self) -> bool:
        from .selectors import has_children

        return not has_children(self.code)
