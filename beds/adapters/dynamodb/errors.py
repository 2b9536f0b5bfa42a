"""botocore / aiohttp errors -> BEDS errors: the one place a DynamoDB driver error is translated.

Layer: infrastructure. Decisions go by the service's error code (`ClientError`'s `Error.Code`,
and a cancelled transaction's `CancellationReasons`); a transport error is a lost connection.
"""

from __future__ import annotations

import aiohttp
from botocore.exceptions import (  # type: ignore[import-untyped]
    ClientError,
    ConnectionClosedError,
    ConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from beds.errors import Conflict, DbError, DbUnavailable, DeadlineExceeded, RequestError

# Worth retrying later, the request itself is fine.
_UNAVAILABLE = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "TransactionConflictException",
    "TransactionInProgressException", "LimitExceededException",
})
_CANCEL_UNAVAILABLE = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded",
                                 "TransactionConflict", "RequestLimitExceeded"})


def translate(exc: BaseException) -> RequestError:
    """The one place a botocore / aiohttp error becomes a BEDS error."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message") or exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code == "ConditionalCheckFailedException":
            return Conflict(f"conditional check failed: {message}", code=code)
        if code == "TransactionCanceledException":
            reasons = {r.get("Code") for r in exc.response.get("CancellationReasons") or []}
            if reasons & _CANCEL_UNAVAILABLE:
                return DbUnavailable(f"database unavailable: {message}", code=code)
            if "ConditionalCheckFailed" in reasons:
                return Conflict(f"conditional check failed: {message}", code=code)
            return DbError(f"database error: {message}", code=code)
        if code in _UNAVAILABLE or status >= 500:
            return DbUnavailable(f"database unavailable: {message} ({code})", code=code)
        return DbError(f"database error: {message}", code=code)
    if isinstance(exc, ReadTimeoutError):
        return DeadlineExceeded(f"no answer from DynamoDB in time ({exc}); a write may or may "
                                "not have committed", ran=True)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return DbError(f"database error: {exc} (give KEY:SECRET in the dsn, or configure the "
                       "AWS SDK's credentials)")
    if isinstance(exc, ConnectionError | ConnectionClosedError | aiohttp.ClientError | OSError):
        return DbUnavailable(f"database unavailable: {type(exc).__name__}: {exc}")
    return DbError(f"database error: {type(exc).__name__}: {exc}")
