"""Write each service's OpenAPI document to docs/openapi/<service>.json (``make docs``).

tests/contracts/test_openapi.py fails when a committed document no longer matches its app.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVICES = {
    "recall-intake": "recall_intake",
    "purchase-matcher": "purchase_matcher",
    "notifier": "notifier",
    "refund-logistics": "refund_logistics",
    "customer-api": "customer_api",
}


def openapi_of(package: str) -> dict:
    app = importlib.import_module(f"{package}.app").create_app()
    return app.openapi()


def dump(doc: dict) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> int:
    for name, package in SERVICES.items():
        (HERE / f"{name}.json").write_text(dump(openapi_of(package)))
        print(f"wrote docs/openapi/{name}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
