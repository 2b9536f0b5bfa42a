"""BEDS: Back End Data System. Template RPC over RabbitMQ onto DBA-owned procedures and views.

Public API: the async `Client`, its `Reply`, and the error tree.
"""

from beds.client import Client, Reply
from beds.errors import (
    BadRequest,
    BedsError,
    BrokerUnavailable,
    CallTimeout,
    Conflict,
    DbError,
    DbUnavailable,
    DeadlineExceeded,
    Internal,
    NoRoute,
    OpNotFound,
    ReplyTooLarge,
    RequestError,
    TemplateNotFound,
    TooLarge,
    ValidationFailed,
    WrongBroker,
)

__version__ = "0.1.0"
__all__ = [
    "BadRequest", "BedsError", "BrokerUnavailable", "CallTimeout", "Client", "Conflict", "DbError",
    "DbUnavailable", "DeadlineExceeded", "Internal", "NoRoute", "OpNotFound", "Reply", "ReplyTooLarge",
    "RequestError", "TemplateNotFound", "TooLarge", "ValidationFailed", "WrongBroker",
]
