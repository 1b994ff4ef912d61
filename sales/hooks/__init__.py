"""Each area of the sales app registers its roles, navigation, tabs and demo steps here."""

from . import analysis, inventory, order_import, orders, quotes

AREAS = (inventory, quotes, orders, order_import, analysis)


def register_all() -> None:
    for area in AREAS:
        area.register()
