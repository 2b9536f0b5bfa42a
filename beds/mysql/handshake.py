"""The connection phase: the server's greeting, this client's answer, and the password
scrambles of the two authentication plugins it speaks.

Layer: infrastructure. Pure: builds and reads payloads, the connection sends them.

    mysql_native_password   MariaDB's default, and MySQL's before 8.0
    caching_sha2_password   MySQL 8's default: the fast path (the server has the account's
                            password cached) only; the full exchange needs TLS or RSA, which
                            this client does not do, and says so (errno 2059)
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from beds.mysql import packets as p
from beds.mysql.errors import CR_AUTH_PLUGIN_CANNOT_LOAD, CR_MALFORMED_PACKET, InterfaceError

NATIVE = "mysql_native_password"
SHA2 = "caching_sha2_password"
UTF8MB4_GENERAL_CI = 45
_MARIADB_PREFIX = "5.5.5-"   # MariaDB 10+ announces itself behind a MySQL 5.5 version

CLIENT_FLAGS = (p.LONG_PASSWORD | p.LONG_FLAG | p.PROTOCOL_41 | p.TRANSACTIONS
                | p.SECURE_CONNECTION | p.MULTI_RESULTS | p.PLUGIN_AUTH
                | p.PLUGIN_AUTH_LENENC_DATA)


@dataclass(frozen=True)
class Greeting:
    server_version: str
    thread_id: int
    capabilities: int
    status: int
    scramble: bytes
    plugin: str


def read_greeting(data: bytes) -> Greeting:
    """The server's Handshake V10."""
    try:
        if data[0] != 10:
            raise InterfaceError(CR_MALFORMED_PACKET, f"unsupported protocol version {data[0]}")
        end = data.index(b"\0", 1)
        version = data[1:end].decode("utf-8", "replace")
        pos = end + 1
        thread_id = struct.unpack_from("<I", data, pos)[0]
        salt = data[pos + 4:pos + 12]
        pos += 13                                    # 8 bytes of salt, a filler byte
        low = struct.unpack_from("<H", data, pos)[0]
        status = struct.unpack_from("<H", data, pos + 3)[0]
        high = struct.unpack_from("<H", data, pos + 5)[0]
        salt_len = data[pos + 7]
        pos += 18                                    # 10 reserved (MariaDB: extended caps)
        capabilities = low | high << 16
        more = max(13, salt_len - 8)
        salt += data[pos:pos + more].rstrip(b"\0")
        pos += more
        plugin = NATIVE
        if capabilities & p.PLUGIN_AUTH and pos < len(data):
            plugin = data[pos:].split(b"\0", 1)[0].decode("ascii", "replace")
    except (IndexError, ValueError, struct.error) as exc:
        raise InterfaceError(CR_MALFORMED_PACKET, "malformed server greeting") from exc
    if version.startswith(_MARIADB_PREFIX):
        version = version[len(_MARIADB_PREFIX):]
    return Greeting(version, thread_id, capabilities, status, bytes(salt[:20]), plugin)


def scramble(plugin: str, password: str, salt: bytes) -> bytes:
    secret = password.encode("utf-8")
    if not secret:
        return b""
    if plugin == NATIVE:
        # The protocol's own scramble (SHA-1 is what the server checks), not a stored hash.
        stage1 = hashlib.sha1(secret).digest()  # noqa: S324
        return _xor(stage1, hashlib.sha1(salt + hashlib.sha1(stage1).digest()).digest())  # noqa: S324
    if plugin == SHA2:
        stage1 = hashlib.sha256(secret).digest()
        return _xor(stage1, hashlib.sha256(hashlib.sha256(stage1).digest() + salt).digest())
    raise InterfaceError(CR_AUTH_PLUGIN_CANNOT_LOAD,
                         f"authentication plugin {plugin!r} is not supported by BEDS's MySQL "
                         f"client (it speaks {NATIVE} and {SHA2}): create the account "
                         f"IDENTIFIED WITH {NATIVE}")


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def answer(greeting: Greeting, user: str, password: str, database: str | None,
           multi_statements: bool) -> tuple[bytes, int]:
    """The HandshakeResponse41 payload and the capabilities both sides now use."""
    flags = CLIENT_FLAGS | (greeting.capabilities & p.DEPRECATE_EOF)
    if database:
        flags |= p.CONNECT_WITH_DB
    if multi_statements:
        flags |= p.MULTI_STATEMENTS
    if not greeting.capabilities & p.PROTOCOL_41:
        raise InterfaceError(CR_MALFORMED_PACKET, "the server does not speak protocol 4.1")
    plugin = greeting.plugin if greeting.plugin in (NATIVE, SHA2) else NATIVE
    body = bytearray(struct.pack("<IIB23x", flags, p.MAX_PAYLOAD, UTF8MB4_GENERAL_CI))
    body += user.encode("utf-8") + b"\0"
    body += p.pack_lenenc(scramble(plugin, password, greeting.scramble))
    if database:
        body += database.encode("utf-8") + b"\0"
    body += plugin.encode("ascii") + b"\0"
    return bytes(body), flags


def switch_request(data: bytes) -> tuple[str, bytes]:
    """An AuthSwitchRequest (0xFE): the plugin the server wants, and its new salt."""
    name, _, salt = data[1:].partition(b"\0")
    return name.decode("ascii", "replace"), salt.rstrip(b"\0")
