"""Exceptions raised by the iSeller and Accurate clients.

Every message is meant to be read by a shop operator on the Sync Status page, and never contains a
secret (the hooks scrub tokens, signature secrets and client secrets before building one).

Business refusals of a *save* (Accurate ``s: false``, iSeller ``status: false`` on CreateTransfer) are
not exceptions: they come back as ``SaveResult`` / ``TransferResult`` with the reason, because one
refused document must not stop the batch. A refused *read* is a configuration or programming error
and raises ``BusinessError``.
"""

from __future__ import annotations


class ApiError(Exception):
    """Base class of every error of the API clients.

    ``status_code`` is the HTTP status of the last answer, when there was one.
    """

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code

    def __str__(self) -> str:
        return self.message


class TransientApiError(ApiError):
    """The service was unavailable (429, 5xx, timeout, connection error) after every retry.

    Nothing was stored by the failed call (reads, or writes that were never sent), so the document can
    simply be tried again later.
    """

    def __init__(self, message: str, *, status_code: int | None = None, attempts: int = 1) -> None:
        super().__init__(message, status_code=status_code)
        self.attempts = attempts


class AuthError(ApiError):
    """The service refused our credentials (wrong or revoked token, bad signature, wrong client secret).

    Not retried: an operator has to fix the Airflow connection.
    """


class OutcomeUnknownError(ApiError):
    """A write may have been stored but its answer was lost (timeout after sending, 5xx on a save).

    The caller must look the record up (by ``number``) before sending it again. ``module`` is the
    Accurate module (or iSeller method), ``number`` the record's key when it has one, ``numbers`` the
    keys of every record of a bulk save.
    """

    def __init__(
        self,
        message: str,
        *,
        module: str,
        number: str | None = None,
        numbers: tuple[str, ...] = (),
        status_code: int | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.module = module
        self.number = number
        self.numbers = numbers or ((number,) if number else ())


class BusinessError(ApiError):
    """A read or control call was refused by the service (HTTP 200 with ``s``/``status`` false).

    ``messages`` are the service's own messages (Indonesian by default for Accurate).
    """

    def __init__(self, message: str, *, messages: list[str] | None = None, status_code: int | None = None):
        super().__init__(message, status_code=status_code)
        self.messages = list(messages or [])


class AccurateBusinessError(BusinessError):
    """Accurate refused a read or control call with ``s: false``."""


class IsellerBusinessError(BusinessError):
    """iSeller refused a read with ``status: false`` and an ``error_message``."""
