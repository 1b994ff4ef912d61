"""Forms of the catalogue and stock pages. They parse input; the services validate the business
rules (unique SKU, stock never negative, ...) and the views map a service's ValidationError back
onto the fields with ``apply_errors``."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from customers.models import CustomerLevel

from ..models import Product, Warehouse
from ..selectors.inventory import category_tree

MAX_QUANTITY = Decimal("9999999999.999")


def apply_errors(form: forms.Form, error: ValidationError) -> None:
    """Put a service's ValidationError on the form: per field where the form has the field."""
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            target = field if field in form.fields else None
            for item in errors:
                form.add_error(target, item.messages)
    else:
        form.add_error(None, error.messages)


class CategoryChoiceField(forms.ModelChoiceField):
    """Categories indented by depth, in tree order (the tree is read when the form is built)."""

    def __init__(self, **kwargs):
        from ..models import ProductCategory

        super().__init__(queryset=ProductCategory.objects.all(), **kwargs)

    def load_tree(self, *, exclude: set[int] | None = None) -> None:
        exclude = exclude or set()
        self.choices = [("", "---------")] + [
            (node.category.pk, f"{'　' * node.depth}{node.category.label}")
            for node in category_tree()
            if node.category.pk not in exclude
        ]


def _quantity_field(label, *, required=True, min_value=None, help_text=""):
    return forms.DecimalField(
        label=label,
        required=required,
        max_digits=13,
        decimal_places=3,
        min_value=min_value,
        max_value=MAX_QUANTITY,
        help_text=help_text,
        widget=forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"}),
    )


def _amount_field(label, *, required=True, help_text=""):
    return forms.DecimalField(
        label=label,
        required=required,
        max_digits=14,
        decimal_places=2,
        min_value=Decimal("0"),
        help_text=help_text,
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
    )


class ProductForm(forms.Form):
    sku = forms.CharField(
        label=_("SKU"), max_length=64, help_text=_("Letters, digits and . _ - / only; unique.")
    )
    name = forms.CharField(label=_("Product name"), max_length=200)
    category = CategoryChoiceField(label=_("Category"), required=False)
    brand = forms.CharField(label=_("Brand"), max_length=80, required=False)
    unit = forms.CharField(label=_("Unit"), max_length=20, initial="件")
    list_price = _amount_field(_("List price (tax included)"))
    cost = _amount_field(_("Cost"), required=False)
    tax_rate_percent = forms.DecimalField(
        label=_("Tax rate (%)"),
        max_digits=5,
        decimal_places=2,
        min_value=Decimal("0"),
        max_value=Decimal("100"),
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
    )
    status = forms.ChoiceField(label=_("Status"), choices=Product.Status.choices)
    low_stock_threshold = _quantity_field(
        _("Low-stock threshold"),
        required=False,
        min_value=Decimal("0"),
        help_text=_(
            "Notify when the available quantity in a warehouse falls to or below this. 0 turns it off."
        ),
    )
    image = forms.ImageField(label=_("Image"), required=False)
    description = forms.CharField(
        label=_("Description"), max_length=5000, required=False, widget=forms.Textarea(attrs={"rows": 4})
    )

    def __init__(self, *args, product: Product | None = None, **kwargs):
        self.product = product
        self.levels = list(CustomerLevel.objects.order_by("rank", "code"))
        if product is not None and "initial" not in kwargs:
            tiers = {t.level_id: t.price for t in product.tiers.all()}
            kwargs["initial"] = {
                "sku": product.sku,
                "name": product.name,
                "category": product.category_id,
                "brand": product.brand,
                "unit": product.unit,
                "list_price": product.list_price,
                "cost": product.cost,
                "tax_rate_percent": (product.tax_rate * 100).quantize(Decimal("0.01")),
                "status": product.status,
                "low_stock_threshold": product.low_stock_threshold.normalize(),
                "description": product.description,
                "image": product.image or None,
                **{f"tier_{level_id}": price for level_id, price in tiers.items()},
            }
        super().__init__(*args, **kwargs)
        self.fields["category"].load_tree()
        if product is None:
            from ..models import default_tax_rate

            self.fields["tax_rate_percent"].initial = (default_tax_rate() * 100).quantize(Decimal("0.01"))
            self.fields["status"].initial = Product.Status.ON_SALE
        for level in self.levels:
            self.fields[f"tier_{level.pk}"] = _amount_field(
                _("Price for %(level)s") % {"level": level.display_name},
                required=False,
                help_text=_("Leave empty to use the list price."),
            )

    def tier_fields(self):
        return [self[f"tier_{level.pk}"] for level in self.levels]

    def main_fields(self):
        return [self[name] for name in self.fields if not name.startswith("tier_")]

    def service_values(self) -> dict:
        data = dict(self.cleaned_data)
        tiers = {level.pk: data.pop(f"tier_{level.pk}", None) for level in self.levels}
        percent = data.pop("tax_rate_percent")
        data["tax_rate"] = (percent / 100).quantize(Decimal("0.0001"))
        if data.get("cost") is None:
            data["cost"] = Decimal("0")
        if data.get("low_stock_threshold") is None:
            data["low_stock_threshold"] = Decimal("0")
        image = data.pop("image", None)
        if image is False:  # "clear" ticked
            data["image"] = ""
        elif image and "image" in self.changed_data:  # a new upload
            data["image"] = image
        return {"tiers": tiers, **data}


class CategoryForm(forms.Form):
    name = forms.CharField(label=_("Name (Chinese)"), max_length=80)
    name_en = forms.CharField(label=_("Name (English)"), max_length=80, required=False)
    parent = CategoryChoiceField(label=_("Parent category"), required=False)
    sort_order = forms.IntegerField(label=_("Sort order"), min_value=0, max_value=100000, initial=0)

    def __init__(self, *args, category=None, **kwargs):
        super().__init__(*args, **kwargs)
        exclude = set()
        if category is not None:
            from ..selectors.inventory import category_descendant_ids

            exclude = set(category_descendant_ids(category.pk))
        self.fields["parent"].load_tree(exclude=exclude)


class WarehouseForm(forms.ModelForm):
    stock_managers = forms.ModelMultipleChoiceField(
        label=_("Stock managers"),
        queryset=get_user_model()._default_manager.none(),
        required=False,
        help_text=_("They are notified when a product runs low in this warehouse."),
        widget=forms.SelectMultiple(attrs={"size": 6}),
    )

    class Meta:
        model = Warehouse
        fields = ["code", "name", "region", "is_active", "is_default", "stock_managers"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        users = get_user_model()._default_manager.filter(is_active=True).order_by("username")
        self.fields["stock_managers"].queryset = users
        self.fields["code"].help_text = _("Short code, e.g. hz-main (letters, digits, - and _).")

    def _post_clean(self):  # the service validates and saves; no model validation here
        pass


class SkuField(forms.CharField):
    """A product typed by SKU (exact, case-insensitive); the error names the SKU."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault("label", _("SKU"))
        super().__init__(**kwargs)
        self.widget.attrs.setdefault("autocomplete", "off")
        self.widget.attrs.setdefault("list", "sku-options")

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return None
        product = Product.objects.filter(sku__iexact=value.strip()).first()
        if product is None:
            raise ValidationError(_("Unknown SKU: %(sku)s") % {"sku": value.strip()[:64]}, code="unknown_sku")
        return product


def _warehouse_field(label):
    return forms.ModelChoiceField(label=label, queryset=Warehouse.objects.filter(is_active=True))


class StockReceiveForm(forms.Form):
    product = SkuField()
    warehouse = _warehouse_field(_("Warehouse"))
    quantity = _quantity_field(_("Quantity"), min_value=Decimal("0.001"))
    unit_cost = _amount_field(_("Unit cost"), required=False)
    reason = forms.CharField(
        label=_("Reason"), max_length=200, help_text=_("E.g. the purchase order or supplier delivery note.")
    )


class StockAdjustForm(forms.Form):
    product = SkuField()
    warehouse = _warehouse_field(_("Warehouse"))
    quantity = _quantity_field(
        _("Change"),
        help_text=_("Positive to add (found in a stocktake), negative to remove (lost, damaged)."),
    )
    reason = forms.CharField(label=_("Reason"), max_length=200)

    def clean_quantity(self):
        quantity = self.cleaned_data["quantity"]
        if quantity == 0:
            raise ValidationError(
                _("An adjustment must change the quantity: enter a number other than zero.")
            )
        if quantity < -MAX_QUANTITY:
            raise ValidationError(_("The quantity is too large."))
        return quantity


class StockTransferForm(forms.Form):
    product = SkuField()
    from_warehouse = _warehouse_field(_("From warehouse"))
    to_warehouse = _warehouse_field(_("To warehouse"))
    quantity = _quantity_field(_("Quantity"), min_value=Decimal("0.001"))
    reason = forms.CharField(label=_("Reason"), max_length=200)
