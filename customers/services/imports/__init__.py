"""Customer import from .xlsx and .csv files (R5.1.3 collection).

The flow: upload (``import_session_create``: the file is kept under MEDIA_ROOT/imports/<token>/,
inspected and refused with a translated message when hostile or malformed), map the columns
(``auto_mapping`` recognises Chinese and English headers; ``ImportTemplate`` remembers mappings),
preview (``run_import(dry_run=True)``: the real import inside a transaction that is rolled back),
then run (``import_start``: inline up to CUSTOMER_IMPORT_INLINE_ROWS rows, otherwise a background
job of kind ``customers_import``). Every row is validated; rows with errors are skipped and listed in
an .xlsx error report. Duplicates are found by phone, e-mail and platform account (blind indexes,
one query per kind per batch of rows) and either updated or skipped; a row with none of them is
recognised by the fingerprint of its content stored when it was first imported, so importing the
same file twice changes nothing.

The package:

* ``limits``: settings, the permission, ``ImportFileError``;
* ``mapping``: fields, header synonyms, mapping checks, mapping templates;
* ``reading``: opening and inspecting .xlsx / .csv files, cell values;
* ``words``: the Chinese and English words for choices and regions;
* ``parsing``: one row to ``customer_create`` arguments with per-column errors;
* ``matching``: row fingerprints, the existing customers a batch of rows matches, what an update
  would change;
* ``creating``: many customers created with a few multi-row INSERTs and one batched audit append;
* ``engine``: ``run_import`` (batches, policy, report) and the error report;
* ``sessions``: upload sessions; ``jobs``: running inline or as a background job.

Settings (read at call time): CUSTOMER_IMPORT_MAX_BYTES (20 MB), CUSTOMER_IMPORT_MAX_ROWS (200,000),
CUSTOMER_IMPORT_MAX_COLUMNS (200), CUSTOMER_IMPORT_MAX_UNPACKED_BYTES (200 MB),
CUSTOMER_IMPORT_INLINE_ROWS (1,000), CUSTOMER_IMPORT_PREVIEW_ROWS (1,000), CUSTOMER_IMPORT_BATCH (1,000),
CUSTOMER_IMPORT_SESSION_HOURS (24), CUSTOMER_IMPORT_BULK (True: create new customers in bulk).
"""

from .engine import ACTION_LABELS, PREVIEW_SAMPLE, ImportReport, Policy, error_report_xlsx, run_import
from .jobs import (
    IMPORT_KIND,
    build_customers_import,
    import_customers_task,
    import_rows_message,
    import_start,
)
from .limits import (
    IMPORT_PERMISSION,
    MB,
    ImportFileError,
    batch_size,
    can_import,
    inline_rows,
    max_bytes,
    max_columns,
    max_rows,
    max_unpacked_bytes,
    preview_rows,
)
from .mapping import (
    FIELD_CHOICES,
    FIELD_LABELS,
    FIELDS,
    MULTI_FIELDS,
    SYNONYMS,
    auto_field,
    auto_mapping,
    import_template_delete,
    import_template_get_for_delete,
    import_template_list_for_user,
    import_template_save,
    normalize_header,
    validate_mapping,
)
from .matching import row_fingerprint
from .parsing import ParsedRow, RowError, RowParser
from .reading import Table, cell_text, inspect_file, neutralise, open_table
from .sessions import (
    TOKEN_RE,
    ImportSession,
    import_session_create,
    import_session_get,
    import_session_set_mapping,
    import_sessions_cleanup,
    imports_root,
)

__all__ = [
    "ACTION_LABELS",
    "FIELDS",
    "FIELD_CHOICES",
    "FIELD_LABELS",
    "IMPORT_KIND",
    "IMPORT_PERMISSION",
    "MB",
    "MULTI_FIELDS",
    "PREVIEW_SAMPLE",
    "SYNONYMS",
    "TOKEN_RE",
    "ImportFileError",
    "ImportReport",
    "ImportSession",
    "ParsedRow",
    "Policy",
    "RowError",
    "RowParser",
    "Table",
    "auto_field",
    "auto_mapping",
    "batch_size",
    "build_customers_import",
    "can_import",
    "cell_text",
    "error_report_xlsx",
    "import_customers_task",
    "import_rows_message",
    "import_session_create",
    "import_session_get",
    "import_session_set_mapping",
    "import_sessions_cleanup",
    "import_start",
    "import_template_delete",
    "import_template_get_for_delete",
    "import_template_list_for_user",
    "import_template_save",
    "imports_root",
    "inline_rows",
    "inspect_file",
    "max_bytes",
    "max_columns",
    "max_rows",
    "max_unpacked_bytes",
    "neutralise",
    "normalize_header",
    "open_table",
    "preview_rows",
    "row_fingerprint",
    "run_import",
    "validate_mapping",
]
