"""AMQP 0-9-1 constants: frame types, class/method ids, reply codes, the protocol header.

Layer: infrastructure. Values from the AMQP 0-9-1 specification (rabbitmq-codegen's
amqp-rabbitmq-0.9.1.json). A method is keyed by `class_id << 16 | method_id`, which is also the
first 4 bytes of its frame payload read as one unsigned int: one unpack, one dict lookup.
"""

from __future__ import annotations

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"

FRAME_METHOD = 1
FRAME_HEADER = 2
FRAME_BODY = 3
FRAME_HEARTBEAT = 8
FRAME_END = 0xCE
FRAME_OVERHEAD = 8          # type (1) + channel (2) + size (4) + frame-end (1)
FRAME_MIN_SIZE = 4096
CLIENT_FRAME_MAX = 131072
CLIENT_CHANNEL_MAX = 2047

REPLY_SUCCESS = 200
NO_ROUTE = 312
CONNECTION_FORCED = 320
ACCESS_REFUSED = 403
NOT_FOUND = 404
RESOURCE_LOCKED = 405
PRECONDITION_FAILED = 406
FRAME_ERROR = 501
SYNTAX_ERROR = 502
COMMAND_INVALID = 503
CHANNEL_ERROR = 504
UNEXPECTED_FRAME = 505
NOT_ALLOWED = 530


def key(class_id: int, method_id: int) -> int:
    return class_id << 16 | method_id


CONNECTION = 10
CHANNEL = 20
EXCHANGE = 40
QUEUE = 50
BASIC = 60
CONFIRM = 85

CONNECTION_START = key(10, 10)
CONNECTION_START_OK = key(10, 11)
CONNECTION_SECURE = key(10, 20)
CONNECTION_TUNE = key(10, 30)
CONNECTION_TUNE_OK = key(10, 31)
CONNECTION_OPEN = key(10, 40)
CONNECTION_OPEN_OK = key(10, 41)
CONNECTION_CLOSE = key(10, 50)
CONNECTION_CLOSE_OK = key(10, 51)
CONNECTION_BLOCKED = key(10, 60)
CONNECTION_UNBLOCKED = key(10, 61)

CHANNEL_OPEN = key(20, 10)
CHANNEL_OPEN_OK = key(20, 11)
CHANNEL_FLOW = key(20, 20)
CHANNEL_FLOW_OK = key(20, 21)
CHANNEL_CLOSE = key(20, 40)
CHANNEL_CLOSE_OK = key(20, 41)

EXCHANGE_DECLARE = key(40, 10)
EXCHANGE_DECLARE_OK = key(40, 11)
EXCHANGE_DELETE = key(40, 20)
EXCHANGE_DELETE_OK = key(40, 21)

QUEUE_DECLARE = key(50, 10)
QUEUE_DECLARE_OK = key(50, 11)
QUEUE_BIND = key(50, 20)
QUEUE_BIND_OK = key(50, 21)
QUEUE_PURGE = key(50, 30)
QUEUE_PURGE_OK = key(50, 31)
QUEUE_DELETE = key(50, 40)
QUEUE_DELETE_OK = key(50, 41)
QUEUE_UNBIND = key(50, 50)
QUEUE_UNBIND_OK = key(50, 51)

BASIC_QOS = key(60, 10)
BASIC_QOS_OK = key(60, 11)
BASIC_CONSUME = key(60, 20)
BASIC_CONSUME_OK = key(60, 21)
BASIC_CANCEL = key(60, 30)
BASIC_CANCEL_OK = key(60, 31)
BASIC_PUBLISH = key(60, 40)
BASIC_RETURN = key(60, 50)
BASIC_DELIVER = key(60, 60)
BASIC_ACK = key(60, 80)
BASIC_REJECT = key(60, 90)
BASIC_NACK = key(60, 120)

CONFIRM_SELECT = key(85, 10)
CONFIRM_SELECT_OK = key(85, 11)


def method_name(method_key: int) -> str:
    """`class.method` for a log line or an error message ("60.999" when unknown)."""
    return _NAMES.get(method_key, f"{method_key >> 16}.{method_key & 0xFFFF}")


_NAMES = {value: name.lower().replace("_", ".", 1) for name, value in dict(globals()).items()
          if isinstance(value, int) and name.split("_")[0] in
          ("CONNECTION", "CHANNEL", "EXCHANGE", "QUEUE", "BASIC", "CONFIRM") and "_" in name}
