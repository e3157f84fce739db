"""Reading captured log records.

The gateway's redaction filter (installed on the root handlers by an in-process lifespan,
pytest's capture handlers included) renders a record's traceback into ``exc_text`` and
clears ``exc_info``: a test asking whether a line carries a traceback must look at both.
"""

from __future__ import annotations

import logging


def has_traceback(record: logging.LogRecord) -> bool:
    return bool(record.exc_info or record.exc_text)
