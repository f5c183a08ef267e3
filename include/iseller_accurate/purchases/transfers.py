"""iSeller's side of the documents of one task: its products and outlets (read once per task), and
its transfers, found by ``reference_code`` and created exactly once.

Exactly once: the transfer's ledger row (``creating``) is written before ``CreateTransfer``, and
iSeller is asked ``GetTransfers(reference_code=...)`` before every create; a transfer found is
confirmed, never created twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from include.iseller_accurate.purchases.mapping import EventOutcome, StockKey, _text
from include.iseller_accurate.purchases.store import WebhookEventLedger

log = logging.getLogger(__name__)


@dataclass(eq=False)
class IsellerTransfers:
    """iSeller as the purchases see it, for one task (look-ups are cached)."""

    ledger: WebhookEventLedger
    client: Any  # IsellerHook
    _skus: set[str] | None = field(default=None, init=False)
    _outlet_codes: dict[str, str] | None = field(default=None, init=False)

    def skus(self) -> set[str]:
        """SKUs of iSeller's products (a product without SKU has none)."""
        if self._skus is None:
            self._skus = {_text(p.get("sku")) for p in self.client.get_products() if _text(p.get("sku"))}
        return self._skus

    def outlet_codes(self) -> dict[str, str]:
        """iSeller outlet id -> outlet code."""
        if self._outlet_codes is None:
            self._outlet_codes = {
                str(o.get("id") or o.get("outlet_id")): _text(o.get("outlet_code"))
                for o in self.client.get_outlets()
            }
        return self._outlet_codes

    def check(self, difference: Mapping[StockKey, Decimal], names: Mapping[str, str]) -> list[str]:
        """What keeps ``difference`` from being sent: SKUs without iSeller product, unknown outlets."""
        problems: list[str] = []
        skus = self.skus()
        for sku in sorted({sku for _, sku in difference}):
            if sku not in skus:
                name = names.get(sku)
                problems.append(
                    f"item {sku}{f' ({name})' if name else ''} has no product with that SKU in iSeller; "
                    "give the "
                    f"product the SKU {sku} in iSeller, then refresh (clear the failed task)"
                )
        codes = self.outlet_codes()
        for outlet_id in sorted({outlet_id for outlet_id, _ in difference}):
            if not codes.get(outlet_id):
                problems.append(f"outlet {outlet_id} of the settings is not an outlet of the iSeller store")
        return problems

    def find(self, reference_code: str) -> dict[str, Any] | None:
        """The transfer iSeller has under ``reference_code`` (GetTransfers), or None."""
        for transfer in self.client.get_transfers(reference_code=reference_code):
            if _text(transfer.get("reference_code")) == reference_code:
                return dict(transfer)
        return None

    def confirm_found(self, reference_code: str, found: Mapping[str, Any]) -> None:
        """Record as made a transfer that iSeller answered for (GetTransfers)."""
        self.ledger.confirm(
            reference_code,
            _text(found.get("transfer_id")) or None,
            _text(found.get("transfer_number")) or None,
        )

    def create_once(
        self, payload: Mapping[str, Any], label: str, *, what: str = "transfer", refused_note: str = ""
    ) -> EventOutcome | None:
        """Create the planned transfer of ``payload`` unless iSeller has it already (looked up first by
        its reference_code). None when iSeller holds it now, else the failure; a refused or unsent
        transfer's ledger row is dropped, one whose answer was lost stays for the next look-up."""
        from include.iseller_accurate.clients.errors import AuthError, OutcomeUnknownError, TransientApiError

        reference_code = str(payload["reference_code"])
        existing = self.find(reference_code)
        if existing is not None:
            log.info(
                "Transfer %s is already in iSeller (%s): confirmed, not created again",
                reference_code,
                existing.get("transfer_number"),
            )
            self.confirm_found(reference_code, existing)
            return None
        try:
            result = self.client.create_transfer(payload)
        except OutcomeUnknownError as exc:
            return EventOutcome(
                "failed",
                f"{label}: iSeller did not confirm transfer {reference_code} ({exc}); it is looked up "
                "before anything is sent again",
                transient=True,
            )
        except AuthError as exc:
            self.ledger.forget(reference_code)
            return EventOutcome("failed", f"{label}: {exc}")
        except TransientApiError as exc:
            self.ledger.forget(reference_code)
            return EventOutcome(
                "failed", f"{label}: iSeller unavailable ({exc}); it will be retried", transient=True
            )
        if not result.ok:
            self.ledger.forget(reference_code)
            return EventOutcome(
                "failed", f"{label}: iSeller refused {what} {reference_code}: {result.reason}{refused_note}"
            )
        self.ledger.confirm(reference_code, result.transfer_id, result.transfer_number)
        log.info(
            "%s: %s %s %s at %s created in iSeller (%s)",
            label,
            what,
            payload.get("type"),
            reference_code,
            payload.get("outlet_code"),
            result.transfer_number,
        )
        return None
