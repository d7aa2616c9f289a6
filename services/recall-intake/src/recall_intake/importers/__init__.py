"""Regulator import: CPSC, openFDA and EU Safety Gate records become draft recalls for an operator
to review.

``extract`` reads identifiers, lots, serials and date windows from prose (with provenance),
``parsers`` has one parser per source shape, ``reader`` streams a file's records and ``service``
creates, skips or links the drafts. See services/recall-intake/IMPORTING.md.
"""

from recall_intake.importers.base import ImportedRecall, RecordError
from recall_intake.importers.parsers import FORMATS, parse_record
from recall_intake.importers.service import ImportOutcome, import_record

__all__ = [
    "FORMATS",
    "ImportOutcome",
    "ImportedRecall",
    "RecordError",
    "import_record",
    "parse_record",
]
