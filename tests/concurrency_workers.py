"""Functions run in separate processes by tests/test_concurrency.py (spawned, so importable)."""

from __future__ import annotations


def _connect(url):
    from db import database

    database.init(url)


def run_round(url, barrier, now):
    _connect(url)
    from operations.bundles import run_bundle_round

    barrier.wait(timeout=30)
    return run_bundle_round(now, actor="process").created


def compose(url, barrier, now, therapist_id):
    _connect(url)
    from operations import OperationError
    from operations.bundles import create_anfrage

    barrier.wait(timeout=30)
    try:
        return [create_anfrage(therapist_id, now=now).anfrage_id]
    except OperationError as error:
        return error.code


def accept_all(url, barrier, now, anfrage_id, patient_ids):
    _connect(url)
    from operations.responses import record_response

    barrier.wait(timeout=30)
    result = record_response(anfrage_id, dict.fromkeys(patient_ids, "angenommen"), now=now)
    return [c["patient_id"] for c in result.conflicts]


def send(url, barrier, now, anfrage_id):
    _connect(url)
    from operations import OperationError
    from operations.sending import send_anfrage

    barrier.wait(timeout=30)
    try:
        return send_anfrage(anfrage_id, now=now)["channel"]
    except OperationError as error:
        return error.code
