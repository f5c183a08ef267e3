"""The preflight's checks: pure functions over what was read, each finding a :class:`Problem`.

No reads and no writes here: :func:`include.iseller_accurate.preflight.run_preflight` reads Accurate,
iSeller and the ledger, and calls these (everything here is importable from ``preflight`` too). An
``error`` is something that would make documents fail; a ``warning`` is worth repairing but fails
nothing on its own. Every problem names its subject (the outlet, payment type or SKU) and the fix.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from include.iseller_accurate.settings import SETTINGS_VARIABLE, SyncSettings

Severity = Literal["error", "warning"]
#: Days of iSeller orders read for the payment types in use.
PAYMENT_DAYS = 30
#: SKUs missing in Accurate (or of the wrong type) listed one by one; the rest are counted.
MAX_LISTED_SKUS = 50
#: A renewal closer than this to the expiry is reported (the maintenance DAG renews every 15 min).
SUBSCRIPTION_MARGIN = timedelta(days=1)
_CONTROL = re.compile("[\x00-\x1f\x7f]")
_SHOWN = 80


@dataclass(frozen=True)
class Problem:
    """One finding: how bad, what it is about, what is wrong and what to do."""

    severity: Severity
    #: what was checked: webhook, branch, warehouse, account, customer, outlet, payment_type, no_sku,
    #: bad_sku, sku_missing, item_type, unchecked (a read that failed)
    check: str
    subject: str  # the outlet, payment type, SKU or connection it is about
    message: str
    fix: str

    @property
    def key(self) -> tuple[str, str, str]:
        """What identifies the problem across runs (to compare a run with an earlier one)."""
        return (self.severity, self.check, self.subject)

    def line(self) -> str:
        """One log line: ``ERROR outlet ...: message. Fix: ...``."""
        return f"{self.severity.upper()} {self.subject}: {self.message} Fix: {self.fix}"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def shown(value: Any) -> str:
    """A value as quoted in a message: repr-quoted, control characters visible, never huge."""
    text = repr(value) if not isinstance(value, str) or _CONTROL.search(value) else f'"{value}"'
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _key(outlet_id: str, name: str) -> str:
    return f"{SETTINGS_VARIABLE}.outlets.{outlet_id}.{name}"


def outlet_label(outlet_id: str, name: str | None) -> str:
    """How an outlet is named in a problem: ``outlet Toko Kemang (<id>)``."""
    return f"outlet {name} ({outlet_id})" if name else f"outlet {outlet_id}"


def _closest(value: str, choices: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _name_fix(key: str, value: str, kind: str, known: Iterable[str]) -> str:
    closest = _closest(value, known)
    if closest is not None:
        return (
            f'set {key} to "{closest}" (the closest {kind} name in Accurate), or create the {kind}'
            f" {shown(value)} in Accurate"
        )
    return (
        f"set {key} to the exact name of an Accurate {kind}, or create the {kind} {shown(value)} in Accurate"
    )


# -- the checks (pure) ---------------------------------------------------------------------------------
def check_subscription(row: Mapping[str, Any] | None, now: datetime) -> list[Problem]:
    """Accurate's webhook subscription as last renewed by ``accurate_webhook_maintenance``."""
    subject = "Accurate webhook subscription"
    fix = (
        "unpause the DAG accurate_webhook_maintenance and trigger it;"
        " it renews the subscription every 15 minutes"
    )
    if not row or row.get("renewed_at") is None:
        problem = "no renewal recorded yet"
        if row and row.get("last_error"):
            return [
                Problem(
                    "error",
                    "webhook",
                    subject,
                    f"never renewed; last attempt failed: {row['last_error']}.",
                    f"repair the connection accurate_api, then {fix}",
                )
            ]
        return [
            Problem(
                "warning",
                "webhook",
                subject,
                f"{problem} (purchases and items made in Accurate do not reach iSeller until it is).",
                fix,
            )
        ]
    expires = row.get("expires_at")
    error_at = row.get("last_error_at")
    if error_at is not None and error_at > row["renewed_at"]:
        return [
            Problem(
                "error",
                "webhook",
                subject,
                f"the last renewal failed ({row.get('last_error')}); it expires"
                f" {expires.isoformat() if expires else 'at an unknown time'}.",
                f"repair the connection accurate_api, then {fix}",
            )
        ]
    if expires is not None and expires <= now:
        return [
            Problem(
                "error", "webhook", subject, f"expired at {expires.isoformat()}; Accurate sends nothing.", fix
            )
        ]
    if expires is not None and expires - now < SUBSCRIPTION_MARGIN:
        return [Problem("warning", "webhook", subject, f"expires soon, at {expires.isoformat()}.", fix)]
    return []


@dataclass(frozen=True)
class AccurateMasters:
    """What Accurate holds of the names and numbers the outlet mapping refers to."""

    branches: frozenset[str]
    warehouses: Mapping[str, bool]  # name -> suspended
    accounts: frozenset[str]
    customers: frozenset[str]


def mapped_accounts(settings: SyncSettings) -> set[str]:
    """Every GL account number the outlet mapping names."""
    numbers: set[str] = set()
    for mapping in settings.outlets.values():
        numbers.update(v for v in (mapping.cash_account, mapping.adjustment_account) if v)
        numbers.update(mapping.payment_accounts.values())
    return numbers


def check_outlets(
    settings: SyncSettings, iseller_outlets: list[Mapping[str, Any]], masters: AccurateMasters
) -> list[Problem]:
    """Every mapped outlet's branch, warehouse, accounts and walk-in customer; unmapped iSeller outlets."""
    problems: list[Problem] = []
    names = {str(o.get("id") or o.get("outlet_id")): str(o.get("name") or "") for o in iseller_outlets}
    for outlet_id, mapping in sorted(settings.outlets.items()):
        subject = outlet_label(outlet_id, mapping.name or names.get(outlet_id))
        if outlet_id not in names:
            problems.append(
                Problem(
                    "warning",
                    "outlet",
                    subject,
                    "is mapped but iSeller has no outlet with this id.",
                    f"remove {SETTINGS_VARIABLE}.outlets.{outlet_id}, or correct the id (iSeller outlet ids:"
                    " see"
                    " the preflight page's list)",
                )
            )
        if mapping.branch not in masters.branches:
            problems.append(
                Problem(
                    "error",
                    "branch",
                    subject,
                    f"branch {shown(mapping.branch)} does not exist in Accurate.",
                    _name_fix(_key(outlet_id, "branch"), mapping.branch, "branch", masters.branches),
                )
            )
        if mapping.warehouse not in masters.warehouses:
            problems.append(
                Problem(
                    "error",
                    "warehouse",
                    subject,
                    f"warehouse {shown(mapping.warehouse)} does not exist in Accurate.",
                    _name_fix(
                        _key(outlet_id, "warehouse"), mapping.warehouse, "warehouse", masters.warehouses
                    ),
                )
            )
        elif masters.warehouses[mapping.warehouse]:
            problems.append(
                Problem(
                    "error",
                    "warehouse",
                    subject,
                    f"warehouse {shown(mapping.warehouse)} is suspended in Accurate.",
                    f"reactivate it in Accurate, or map {_key(outlet_id, 'warehouse')}"
                    " to an active warehouse",
                )
            )
        accounts = [
            ("cash_account", mapping.cash_account),
            ("adjustment_account", mapping.adjustment_account),
        ]
        accounts += [(f"payment_accounts.{gw}", no) for gw, no in sorted(mapping.payment_accounts.items())]
        for key, number in accounts:
            if number and number not in masters.accounts:
                problems.append(
                    Problem(
                        "error",
                        "account",
                        f"{subject} {key}",
                        f"account {shown(number)} does not exist in Accurate.",
                        f"set {_key(outlet_id, key)} to the number of an Accurate account (Daftar Akun),"
                        " or create it",
                    )
                )
        if not mapping.adjustment_account:
            problems.append(
                Problem(
                    "warning",
                    "account",
                    f"{subject} adjustment_account",
                    "no adjustment account is mapped: stock counts of this outlet fail.",
                    f"set {_key(outlet_id, 'adjustment_account')} to the Accurate account"
                    " for stock differences",
                )
            )
        if mapping.walk_in_customer not in masters.customers:
            problems.append(
                Problem(
                    "error",
                    "customer",
                    subject,
                    f"walk-in customer {shown(mapping.walk_in_customer)} does not exist in Accurate.",
                    f"create customer {shown(mapping.walk_in_customer)} in Accurate, or set"
                    f" {_key(outlet_id, 'walk_in_customer')} to an existing customer number",
                )
            )
    for outlet in iseller_outlets:
        outlet_id = str(outlet.get("id") or outlet.get("outlet_id") or "")
        if not outlet_id or outlet_id in settings.outlets or outlet.get("is_active") is False:
            continue
        problems.append(
            Problem(
                "error",
                "outlet",
                outlet_label(outlet_id, str(outlet.get("name") or "") or None),
                "is an active iSeller outlet that is not mapped: its orders, transfers and counts fail.",
                f"add {SETTINGS_VARIABLE}.outlets.{outlet_id} with its Accurate branch and warehouse",
            )
        )
    return problems


def payment_types_seen(orders: Iterable[Mapping[str, Any]]) -> dict[str, set[str]]:
    """outlet id -> payment gateways of successful sale payments (as the sales sync reads them)."""
    seen: dict[str, set[str]] = {}
    for order in orders:
        if not isinstance(order, Mapping):
            continue
        outlet_id = order.get("outlet_id")
        transactions = order.get("transactions")
        if not isinstance(outlet_id, str) or not isinstance(transactions, list):
            continue
        for payment in transactions:
            if not isinstance(payment, Mapping):
                continue
            kind = str(payment.get("type", "sale") or "sale").lower()
            state = str(payment.get("status", "success") or "success").lower()
            if kind != "sale" or state != "success":
                continue
            gateway = payment.get("gateway") or "custom"
            seen.setdefault(outlet_id, set()).add(gateway if isinstance(gateway, str) else repr(gateway))
    return seen


def check_payment_types(
    settings: SyncSettings, seen: Mapping[str, set[str]], names: Mapping[str, str]
) -> list[Problem]:
    """Payment types used in the last days that map to no Accurate account (their receipts fail)."""
    problems: list[Problem] = []
    for outlet_id, gateways in sorted(seen.items()):
        mapping = settings.outlet(outlet_id)
        if mapping is None:
            continue  # reported as an unmapped outlet
        subject = outlet_label(outlet_id, mapping.name or names.get(outlet_id))
        for gateway in sorted(gateways):
            if mapping.account_for(gateway) is None:
                problems.append(
                    Problem(
                        "error",
                        "payment_type",
                        f"{subject} payment type {shown(gateway)}",
                        f"was used in the last {PAYMENT_DAYS} days and maps to no Accurate account: its sales"
                        " receipts fail.",
                        f"set {_key(outlet_id, 'payment_accounts')}.{gateway}"
                        " to an Accurate cash/bank account"
                        f" (or set {_key(outlet_id, 'cash_account')} for every payment type not listed)",
                    )
                )
    return problems


def product_skus(products: Iterable[Mapping[str, Any]]) -> tuple[dict[str, Mapping[str, Any]], list[Problem]]:
    """Active products by SKU, and the problems of products whose SKU cannot be used."""
    by_sku: dict[str, Mapping[str, Any]] = {}
    problems: list[Problem] = []
    for product in products:
        if not isinstance(product, Mapping) or product.get("is_active") is False:
            continue
        name = product.get("name")
        label = f"product {shown(name)} ({product.get('product_id')})"
        sku = product.get("sku")
        if sku is None or (isinstance(sku, str) and not sku.strip()):
            problems.append(
                Problem(
                    "warning",
                    "no_sku",
                    label,
                    "has no SKU: its sales lines are reported as failed, never posted.",
                    "give the product in iSeller the SKU of its Accurate item (Item No.)",
                )
            )
        elif not isinstance(sku, str) or _CONTROL.search(sku) or sku != sku.strip():
            problems.append(
                Problem(
                    "error",
                    "bad_sku",
                    label,
                    f"has the SKU {shown(sku)}, which no Accurate item number can match"
                    " (not text, control characters or spaces at the ends).",
                    "correct the SKU in iSeller to the Accurate item number",
                )
            )
        else:
            by_sku.setdefault(sku, product)
    return by_sku, problems


def check_items(
    by_sku: Mapping[str, Mapping[str, Any]], items: Mapping[str, Mapping[str, Any]]
) -> tuple[list[Problem], dict[str, int]]:
    """SKUs Accurate lacks; Accurate items that are not inventory items where iSeller tracks stock."""
    missing = sorted(sku for sku in by_sku if sku not in items)
    not_inventory = sorted(
        sku
        for sku, product in by_sku.items()
        if sku in items
        and product.get("track_inventory") is True
        and str(items[sku].get("itemType") or "INVENTORY").upper() != "INVENTORY"
    )
    problems: list[Problem] = []
    for sku in missing[:MAX_LISTED_SKUS]:
        problems.append(
            Problem(
                "error",
                "sku_missing",
                f"SKU {shown(sku)}",
                f"(product {shown(by_sku[sku].get('name'))}) has no item in Accurate:"
                " documents with it fail.",
                f"create item {shown(sku)} in Accurate (Item No. = the SKU), or correct the SKU in iSeller",
            )
        )
    if len(missing) > MAX_LISTED_SKUS:
        problems.append(
            Problem(
                "error",
                "sku_missing",
                f"{len(missing) - MAX_LISTED_SKUS} more SKUs",
                f"{len(missing)} SKUs in all have no item in Accurate;"
                f" the first {MAX_LISTED_SKUS} are listed.",
                "create the items in Accurate (an item import), then run the preflight again",
            )
        )
    for sku in not_inventory[:MAX_LISTED_SKUS]:
        problems.append(
            Problem(
                "error",
                "item_type",
                f"SKU {shown(sku)}",
                f"is a {items[sku].get('itemType')} item in Accurate but iSeller tracks its stock:"
                " transfers and"
                " stock counts of it fail.",
                "make it an inventory item (Persediaan) in Accurate, or stop tracking its stock in iSeller",
            )
        )
    if len(not_inventory) > MAX_LISTED_SKUS:
        problems.append(
            Problem(
                "error",
                "item_type",
                f"{len(not_inventory) - MAX_LISTED_SKUS} more SKUs",
                f"{len(not_inventory)} items in all are not inventory items;"
                f" the first {MAX_LISTED_SKUS} are listed.",
                "make them inventory items in Accurate",
            )
        )
    return problems, {"skus": len(by_sku), "skus_missing": len(missing), "not_inventory": len(not_inventory)}
