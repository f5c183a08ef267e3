"""Accurate to iSeller: purchase documents entered in Accurate become iSeller stock.

One event's way, in reading order:

- ``events.py``: a delivery's body as events (parsing, checks) and the asset that wakes the DAG;
- ``store.py``: the event ledger (``sync.webhook_events``, ``sync.webhook_transfers``, ...) and its SQL;
- ``processor.py``: a run claims events and makes iSeller hold what each Accurate document holds;
- ``mapping.py``: what maps to what (pure: kinds, stock per outlet and SKU, request bodies, outcomes);
- ``transfers.py``: iSeller's side: products and outlets, a transfer found by reference or made once;
- ``orders.py``: purchase orders as pending transfers, completed by the receive items naming them;
- ``maintenance.py``: the subscription's renewal and the history catch-up.

The Airflow task entry points are in ``include/iseller_accurate/tasks.py``; the receiver of the
deliveries is ``include/iseller_accurate/web/accurate_webhook.py``.
"""
