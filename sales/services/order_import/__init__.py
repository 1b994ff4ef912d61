"""E-commerce order import from .xlsx/.csv exports (R5.1.3 automatic collection, R5.2.1).

upload (``import_session_create``) -> map the columns (``auto_mapping``, templates) -> preview
(``run_import(dry_run=True)``) -> import (``import_start``: inline or the ``sales_order_import``
job). Modules: ``limits`` (settings, permission), ``fields`` (fields, synonyms, templates),
``addresses`` (regions out of one-cell addresses), ``parsing`` (rows -> orders with per-cell
errors), ``writing`` (customers, addresses, products and orders), ``running`` (sessions, runs, jobs).
"""

from .fields import (
    BUILTIN_TEMPLATES,
    FIELD_CHOICES,
    FIELD_LABELS,
    FIELDS,
    REQUIRED_FIELDS,
    Template,
    auto_mapping,
    import_template_delete,
    import_template_get_for_delete,
    import_template_list_for_user,
    import_template_save,
    template_choices,
    template_get,
    validate_mapping,
)
from .limits import IMPORT_KIND, IMPORT_PERMISSION, can_import, inline_rows, max_rows, preview_rows
from .parsing import OrderGroup, RowError, RowParser, group_rows, line_discount
from .running import (
    ImportFileError,
    ImportSession,
    build_order_import,
    error_report_xlsx,
    import_session_create,
    import_session_get,
    import_session_set_mapping,
    import_sessions_cleanup,
    import_start,
    inspect_file,
    run_import,
    session_assignee,
)
from .writing import BatchWriter, ImportReport

__all__ = [
    "BUILTIN_TEMPLATES",
    "FIELDS",
    "FIELD_CHOICES",
    "FIELD_LABELS",
    "IMPORT_KIND",
    "IMPORT_PERMISSION",
    "REQUIRED_FIELDS",
    "BatchWriter",
    "ImportFileError",
    "ImportReport",
    "ImportSession",
    "OrderGroup",
    "RowError",
    "RowParser",
    "Template",
    "auto_mapping",
    "build_order_import",
    "can_import",
    "error_report_xlsx",
    "group_rows",
    "import_session_create",
    "import_session_get",
    "import_session_set_mapping",
    "import_sessions_cleanup",
    "import_start",
    "import_template_delete",
    "import_template_get_for_delete",
    "import_template_list_for_user",
    "import_template_save",
    "inline_rows",
    "inspect_file",
    "line_discount",
    "max_rows",
    "preview_rows",
    "run_import",
    "session_assignee",
    "template_choices",
    "template_get",
    "validate_mapping",
]
