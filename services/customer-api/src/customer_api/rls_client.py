"""customer-api's client of refund-logistics' HTTP API: the customer's proof of destruction,
forwarded with the customer's own token (docs/decisions/0007-proof-upload-through-customer-api.md),
so refund-logistics authorizes the customer exactly as for a direct upload."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import httpx


@dataclass(frozen=True)
class ProofAnswer:
    """refund-logistics' answer: its status code (0: it could not be reached) and message."""

    status: int
    message: str = ""


class RefundLogisticsClient:
    def __init__(self, base_url: str, timeout_s: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    async def submit_proof(
        self, case_id: str, customer_token: str, image: bytes, content_type: str
    ) -> ProofAnswer:
        # One client per upload: uploads are rare, and nothing is left open between them.
        try:
            async with httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout_s) as client:
                r = await client.post(
                    f"/v1/cases/{quote(case_id, safe='')}/proof",
                    content=image,
                    headers={
                        "Authorization": f"Bearer {customer_token}",
                        "Content-Type": content_type,
                    },
                )
        except httpx.HTTPError:
            return ProofAnswer(0)
        message = ""
        if r.status_code >= 400:
            try:
                body = r.json()
                message = str(body.get("message") or body.get("detail") or "")
            except ValueError:
                message = ""
        return ProofAnswer(r.status_code, message[:500])
