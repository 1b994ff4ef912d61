"""Models of the sales app: catalogue, inventory, quotes, approvals, orders, payments, analysis.

Issue 5 adds leads, opportunities, activities and targets as further modules here.
"""

from .analysis import AnalysisRun, AutoTagRule
from .approvals import ApprovalRequest, ApprovalRule, RoleDiscountLimit
from .catalog import PriceTier, Product, ProductCategory, QuantityField, RateField, default_tax_rate
from .inventory import StockLevel, StockMove, StockReservation, Warehouse
from .order_import import OrderImportTemplate
from .orders import Channel, Order, OrderLine, OrderStatus, OrderStatusChange
from .payments import Invoice, Payment, PaymentMethod, PaymentPlanItem, Refund
from .quotes import DocumentSequence, Quote, QuoteLine, QuoteRevision

__all__ = [
    "AnalysisRun",
    "ApprovalRequest",
    "ApprovalRule",
    "AutoTagRule",
    "Channel",
    "DocumentSequence",
    "Invoice",
    "Order",
    "OrderImportTemplate",
    "OrderLine",
    "OrderStatus",
    "OrderStatusChange",
    "Payment",
    "PaymentMethod",
    "PaymentPlanItem",
    "PriceTier",
    "Product",
    "ProductCategory",
    "QuantityField",
    "Quote",
    "QuoteLine",
    "QuoteRevision",
    "RateField",
    "Refund",
    "RoleDiscountLimit",
    "StockLevel",
    "StockMove",
    "StockReservation",
    "Warehouse",
    "default_tax_rate",
]
