"""Property tests of beds.amqp's codec: every method BEDS sends or receives round-trips against
an independent table-driven codec (tests/support/amqp_wire.py), field tables with every value
type, Properties with any subset of fields, and a stream of frames split at arbitrary chunk
boundaries gives the same deliveries."""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import decimal
import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beds.amqp import Delivery, Properties, spec
from beds.amqp import methods as m
from beds.amqp.channel import Channel
from beds.amqp.codec import decode_table, decode_value, encode_table, encode_value
from beds.amqp.connection import Connection
from beds.amqp.params import Params
from beds.amqp.properties import FIELDS, decode_properties, encode_properties
from tests.support import amqp_wire as wire

shortstr = st.text(max_size=40).filter(lambda s: len(s.encode()) <= 255)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, 2**64 - 1)
stamps = st.integers(0, 2**33).map(lambda s: dt.datetime.fromtimestamp(s, dt.UTC))
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), shortstr,
    st.binary(max_size=30),
    st.floats(allow_nan=False), stamps,
    st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-10**5,
                max_value=10**5))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(shortstr, inner, max_size=4)), max_leaves=12)
tables = st.dictionaries(shortstr, values, max_size=6)


def _frame_payload(frame: bytes) -> bytes:
    frame_type, _channel, size = struct.unpack_from(">BHI", frame)
    assert frame_type == spec.FRAME_METHOD and frame[7 + size] == spec.FRAME_END
    return frame[7:7 + size]


def _sent(frame: bytes) -> tuple[int, dict[str, Any]]:
    return wire.decode_method(_frame_payload(frame))


@given(tables)
def test_field_tables_round_trip(table: dict[str, Any]) -> None:
    decoded, end = decode_table(encode_table(table), 0)
    assert decoded == table
    assert end == len(encode_table(table))


@given(st.sampled_from("tbBsuUIilLfdD"), st.integers(0, 2**64 - 1))
def test_every_numeric_type_rabbitmq_sends_decodes(kind: str, seed: int) -> None:
    fmt = {"t": ">B", "b": ">b", "B": ">B", "s": ">h", "u": ">H", "U": ">h", "I": ">i",
           "i": ">I", "l": ">q", "L": ">Q", "f": ">f", "d": ">d"}
    if kind == "D":
        raw = b"D" + struct.pack(">Bi", 2, seed % 100000)
        assert decode_value(raw, 0) == (decimal.Decimal(seed % 100000).scaleb(-2), 6)
        return
    size = struct.calcsize(fmt[kind])
    packed = (seed % 2**(size * 8)).to_bytes(size, "big")
    expected = struct.unpack(fmt[kind], packed)[0]
    value, end = decode_value(kind.encode() + packed, 0)
    assert end == 1 + size
    if kind == "t":
        assert value is bool(expected)
    elif kind == "f":
        assert value == expected or value != value   # NaN is not equal to itself
    else:
        assert value == expected or (value != value and expected != expected)


def test_void_array_and_bytes_values() -> None:
    for value in (None, [1, "a", [None]], b"\xff\x00", {"n": {"m": True}}):
        assert decode_value(encode_value(value), 0)[0] == value


@given(st.fixed_dictionaries({}, optional={
    "content_type": shortstr, "content_encoding": shortstr, "headers": tables,
    "delivery_mode": st.integers(0, 255), "priority": st.integers(0, 255),
    "correlation_id": shortstr, "reply_to": shortstr, "expiration": shortstr,
    "message_id": shortstr, "timestamp": stamps, "type": shortstr, "user_id": shortstr,
    "app_id": shortstr, "cluster_id": shortstr}))
def test_properties_with_any_subset_round_trip(fields: dict[str, Any]) -> None:
    props = Properties(**fields)
    decoded = decode_properties(encode_properties(props), 0)
    assert decoded == props
    assert {name for name in FIELDS if getattr(decoded, name) is not None} == set(fields)


# --- methods the client sends: beds.amqp encodes, the independent codec decodes -----------

@given(shortstr, shortstr, st.booleans(), st.booleans(), st.booleans(), st.booleans(), tables)
def test_declares_binds_and_deletes(queue: str, exchange: str, a: bool, b: bool, c: bool,
                                    d: bool, args: dict[str, Any]) -> None:
    assert _sent(m.queue_declare(1, queue, a, b, c, d, args)) == (spec.QUEUE_DECLARE, {
        "ticket": 0, "queue": queue, "passive": a, "durable": b, "exclusive": c,
        "auto_delete": d, "nowait": False, "arguments": args})
    assert _sent(m.exchange_declare(2, exchange, queue, a, b, c, d, args)) == (
        spec.EXCHANGE_DECLARE, {"ticket": 0, "exchange": exchange, "type": queue, "passive": a,
                                "durable": b, "auto_delete": c, "internal": d, "nowait": False,
                                "arguments": args})
    assert _sent(m.queue_bind(3, queue, exchange, queue, args)) == (spec.QUEUE_BIND, {
        "ticket": 0, "queue": queue, "exchange": exchange, "routing_key": queue, "nowait": False,
        "arguments": args})
    assert _sent(m.queue_unbind(3, queue, exchange, exchange, args)) == (spec.QUEUE_UNBIND, {
        "ticket": 0, "queue": queue, "exchange": exchange, "routing_key": exchange,
        "arguments": args})
    assert _sent(m.queue_delete(4, queue, a, b)) == (spec.QUEUE_DELETE, {
        "ticket": 0, "queue": queue, "if_unused": a, "if_empty": b, "nowait": False})
    assert _sent(m.queue_purge(4, queue)) == (spec.QUEUE_PURGE, {
        "ticket": 0, "queue": queue, "nowait": False})
    assert _sent(m.exchange_delete(5, exchange, a)) == (spec.EXCHANGE_DELETE, {
        "ticket": 0, "exchange": exchange, "if_unused": a, "nowait": False})


@given(u32, u16, st.booleans(), shortstr, shortstr, st.booleans(), st.booleans(), tables)
def test_qos_consume_cancel(size: int, count: int, global_: bool, queue: str, tag: str,
                            no_ack: bool, exclusive: bool, args: dict[str, Any]) -> None:
    assert _sent(m.basic_qos(1, size, count, global_)) == (spec.BASIC_QOS, {
        "prefetch_size": size, "prefetch_count": count, "global": global_})
    assert _sent(m.basic_consume(1, queue, tag, no_ack, exclusive, args)) == (
        spec.BASIC_CONSUME, {"ticket": 0, "queue": queue, "consumer_tag": tag,
                             "no_local": False, "no_ack": no_ack, "exclusive": exclusive,
                             "nowait": False, "arguments": args})
    assert _sent(m.basic_cancel(1, tag)) == (spec.BASIC_CANCEL, {"consumer_tag": tag,
                                                                 "nowait": False})
    assert _sent(m.basic_cancel_ok(1, tag)) == (spec.BASIC_CANCEL_OK, {"consumer_tag": tag})


@given(st.integers(1, 2047), u64, st.booleans(), st.booleans())
def test_ack_reject_nack(channel: int, tag: int, multiple: bool, requeue: bool) -> None:
    assert _sent(m.basic_ack(channel, tag, multiple)) == (spec.BASIC_ACK, {
        "delivery_tag": tag, "multiple": multiple})
    assert _sent(m.basic_reject(channel, tag, requeue)) == (spec.BASIC_REJECT, {
        "delivery_tag": tag, "requeue": requeue})
    assert _sent(m.basic_nack(channel, tag, multiple, requeue)) == (spec.BASIC_NACK, {
        "delivery_tag": tag, "multiple": multiple, "requeue": requeue})
    assert struct.unpack_from(">H", m.basic_ack(channel, tag, multiple), 1)[0] == channel


@given(shortstr, shortstr, st.booleans(), st.binary(max_size=64))
def test_publish_frames(exchange: str, key: str, mandatory: bool, body: bytes) -> None:
    props = encode_properties(Properties(correlation_id=key, delivery_mode=2))
    both = m.publish_frames(7, exchange.encode(), key.encode(), mandatory, props, len(body))
    size = struct.unpack_from(">I", both, 3)[0]
    assert _sent(both[:size + 8]) == (spec.BASIC_PUBLISH, {
        "ticket": 0, "exchange": exchange, "routing_key": key, "mandatory": mandatory,
        "immediate": False})
    header = both[size + 8:]
    assert header[0] == spec.FRAME_HEADER and header[-1] == spec.FRAME_END
    assert struct.unpack_from(">HHQ", header, 7) == (60, 0, len(body))
    assert decode_properties(header, 19) == Properties(correlation_id=key, delivery_mode=2)


@given(tables, shortstr, shortstr, u16, st.integers(0, 2**31), u16, shortstr,
       st.integers(0, 999), st.booleans())
def test_connection_and_channel_methods(props: dict[str, Any], user: str, password: str,
                                        channel_max: int, frame_max: int, heartbeat: int,
                                        text: str, code: int, active: bool) -> None:
    assert _sent(m.start_ok(props, user, password)) == (spec.CONNECTION_START_OK, {
        "client_properties": props, "mechanism": "PLAIN",
        "response": b"\x00" + user.encode() + b"\x00" + password.encode(), "locale": "en_US"})
    assert _sent(m.tune_ok(channel_max, frame_max, heartbeat)) == (spec.CONNECTION_TUNE_OK, {
        "channel_max": channel_max, "frame_max": frame_max, "heartbeat": heartbeat})
    assert _sent(m.connection_open(user)) == (spec.CONNECTION_OPEN, {
        "virtual_host": user, "capabilities": "", "insist": False})
    for channel, key in ((0, spec.CONNECTION_CLOSE), (3, spec.CHANNEL_CLOSE)):
        assert _sent(m.close(channel, code, text, 60, 40)) == (key, {
            "reply_code": code, "reply_text": text, "class_id": 60, "method_id": 40})
    assert _sent(m.close_ok(0)) == (spec.CONNECTION_CLOSE_OK, {})
    assert _sent(m.close_ok(2)) == (spec.CHANNEL_CLOSE_OK, {})
    assert _sent(m.channel_open(2)) == (spec.CHANNEL_OPEN, {"out_of_band": ""})
    assert _sent(m.flow_ok(2, active)) == (spec.CHANNEL_FLOW_OK, {"active": active})
    assert _sent(m.confirm_select(2)) == (spec.CONFIRM_SELECT, {"nowait": False})


# --- methods the client receives: the independent codec encodes, beds.amqp decodes --------

@given(tables, shortstr, u16, st.integers(0, 2**31), u16, st.integers(0, 999), u64,
       st.booleans(), u32, u32)
def test_received_methods(props: dict[str, Any], text: str, channel_max: int, frame_max: int,
                          heartbeat: int, code: int, tag: int, flag: bool, count: int,
                          consumers: int) -> None:
    def payload(key: int, **values: Any) -> bytes:
        return wire.encode_method(key, **values)
    assert m.decode_start(payload(spec.CONNECTION_START, version_major=0, version_minor=9,
                                  server_properties=props, mechanisms=b"PLAIN AMQPLAIN",
                                  locales=b"en_US"), 4) == (0, 9, props, b"PLAIN AMQPLAIN",
                                                             b"en_US")
    assert m.decode_tune(payload(spec.CONNECTION_TUNE, channel_max=channel_max,
                                 frame_max=frame_max, heartbeat=heartbeat), 4) == (
        channel_max, frame_max, heartbeat)
    for key in (spec.CONNECTION_CLOSE, spec.CHANNEL_CLOSE):
        assert m.decode_close(payload(key, reply_code=code, reply_text=text, class_id=50,
                                      method_id=10), 4) == (code, text, 50, 10)
    assert m.decode_shortstr_arg(payload(spec.CONNECTION_BLOCKED, reason=text), 4) == text
    assert m.decode_shortstr_arg(payload(spec.BASIC_CONSUME_OK, consumer_tag=text), 4) == text
    assert m.decode_shortstr_arg(payload(spec.BASIC_CANCEL_OK, consumer_tag=text), 4) == text
    assert m.decode_bit(payload(spec.CHANNEL_FLOW, active=flag), 4) is flag
    assert m.decode_queue_declare_ok(payload(spec.QUEUE_DECLARE_OK, queue=text,
                                             message_count=count, consumer_count=consumers),
                                     4) == (text, count, consumers)
    assert m.decode_message_count(payload(spec.QUEUE_PURGE_OK, message_count=count), 4) == count
    assert m.decode_message_count(payload(spec.QUEUE_DELETE_OK, message_count=count), 4) == count
    assert m.decode_server_cancel(payload(spec.BASIC_CANCEL, consumer_tag=text, nowait=flag),
                                  4) == (text, flag)
    assert m.decode_deliver(payload(spec.BASIC_DELIVER, consumer_tag=text, delivery_tag=tag,
                                    redelivered=flag, exchange="ex", routing_key=text), 4) == (
        text, tag, flag, "ex", text)
    assert m.decode_return(payload(spec.BASIC_RETURN, reply_code=312, reply_text=text,
                                   exchange="ex", routing_key="rk"), 4) == (312, text, "ex", "rk")
    assert m.decode_confirm(payload(spec.BASIC_ACK, delivery_tag=tag, multiple=flag), 4) == (
        tag, flag, False)
    assert m.decode_confirm(payload(spec.BASIC_NACK, delivery_tag=tag, multiple=flag,
                                    requeue=not flag), 4) == (tag, flag, not flag)


# --- chunk boundaries: the same bytes, cut anywhere, give the same deliveries --------------

class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


def _stream_of_deliveries(bodies: list[bytes]) -> bytes:
    out = b""
    for tag, body in enumerate(bodies, 1):
        props = encode_properties(Properties(correlation_id=f"c{tag}", headers={"n": tag}))
        out += wire.method(1, spec.BASIC_DELIVER, consumer_tag="ctag", delivery_tag=tag,
                           redelivered=tag % 2 == 0, exchange="", routing_key="q")
        out += wire.content(1, body, props, frame_body=50)
        out += wire.frame(spec.FRAME_HEARTBEAT, 0, b"")
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=180), min_size=1, max_size=6), st.data())
def test_frames_split_anywhere_give_the_same_deliveries(bodies: list[bytes],
                                                        data: st.DataObject) -> None:
    stream = _stream_of_deliveries(bodies)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    loop = asyncio.new_event_loop()
    try:
        params = Params.from_url("amqp://127.0.0.1/")
        connection = Connection(params, None, loop)
        connection.connection_made(_Transport())
        connection.frame_max = 4096
        channel = connection._channels[1] = Channel(connection, 1)
        got: list[Delivery] = []
        channel._consumers["ctag"] = (got.append, contextvars.copy_context())
        for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
            connection.data_received(stream[start:end])
        assert not connection.closing.done(), connection.closing
        assert [d.body for d in got] == bodies
        assert [d.delivery_tag for d in got] == list(range(1, len(bodies) + 1))
        assert [d.redelivered for d in got] == [tag % 2 == 0 for tag in range(1, len(bodies) + 1)]
        assert [d.properties.headers for d in got] == [{"n": t} for t in range(1, len(bodies) + 1)]
        assert all(d.body_size == len(d.body) and not d.oversized for d in got)
        assert not connection._buffer
    finally:
        loop.close()
