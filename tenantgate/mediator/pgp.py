"""OpenPGP symmetric encryption in the exact format of pgcrypto's pgp_sym_encrypt/pgp_sym_decrypt.

Why our own ~250 lines rather than a library: pgcrypto reads only one narrow profile of OpenPGP
(SKESK v4 + S2K, SEIPD v1 with MDC); PGPy is stalled upstream, python-gnupg shells out to a gpg
binary with the passphrase, and pysequoia brings a native toolchain and newer packet versions
(SEIPD v2/AEAD) that pgcrypto cannot read. The profile is small, fully specified in RFC 4880, and
proven here against the real pgcrypto in both directions (tests/credentials/test_pgp_interop.py).

Write: SKESK v4 (iterated+salted S2K, SHA-256, count 1,024: the passphrase is a random key, not a
password) + AES-256, then SEIPD v1 holding one literal data packet and the MDC.
Read: also AES-128/192 and 3DES (not pgcrypto's CAST5/Blowfish), SHA-1/MD5/
SHA-2 S2K, encrypted session keys (``sess-key=1``), compressed data (ZIP, ZLIB, BZip2), old and new
packet headers, partial body lengths. Refused: data without MDC (``disable-mdc=1``), public-key
packets, anything tampered with. Errors never carry key material or plaintext.

    ciphertext = encrypt(b"sk_live_...", passphrase=b"<random key>")
    decrypt(ciphertext, passphrase=b"<random key>")  # == b"sk_live_..."
    # and in SQL, in an emergency: pgp_sym_decrypt(ciphertext, '<random key>')
"""

from __future__ import annotations

import bz2
import hashlib
import hmac
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.decrepit.ciphers import algorithms as decrepit_algorithms
from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives.ciphers import BlockCipherAlgorithm, Cipher, algorithms

__all__ = ["DecryptionError", "PGPError", "UnsupportedFormatError", "decrypt", "encrypt"]

MAX_PLAINTEXT = 1 << 20
"""Largest plaintext read back (a guard against compression bombs); secrets are far smaller."""

_S2K_COUNT_BYTE = 0  # decodes to 1,024 octets hashed, the smallest count OpenPGP can express
_MDC_HEADER = b"\xd3\x14"

_CipherFactory = Callable[[bytes], BlockCipherAlgorithm]
# algorithm id -> (cipher factory, key size, block size), in bytes; RFC 4880 section 9.2
_CIPHERS: dict[int, tuple[_CipherFactory, int, int]] = {
    2: (decrepit_algorithms.TripleDES, 24, 8),
    7: (algorithms.AES, 16, 16),
    8: (algorithms.AES, 24, 16),
    9: (algorithms.AES, 32, 16),
}
_AES256 = 9
# digest id -> hashlib name; RFC 4880 section 9.4
_DIGESTS = {
    1: "md5",
    2: "sha1",
    3: "ripemd160",
    8: "sha256",
    9: "sha384",
    10: "sha512",
    11: "sha224",
}
_SHA256 = 8


class PGPError(Exception):
    """openpgp data could not be processed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__)


class DecryptionError(PGPError):
    """wrong key or corrupt data: check the key id recorded with the ciphertext."""


class UnsupportedFormatError(DecryptionError):
    """the ciphertext uses an openpgp feature that is not supported."""


@dataclass(frozen=True, slots=True)
class _Packet:
    tag: int
    body: bytes


def encrypt(plaintext: bytes, passphrase: bytes, *, text: bool = True) -> bytes:
    """Encrypt like ``pgp_sym_encrypt(data, key, 'cipher-algo=aes256, s2k-digest-algo=sha256')``.

    ``text=True`` marks the literal data as text so that ``pgp_sym_decrypt`` reads it back;
    ``text=False`` marks it binary (read back in SQL with ``pgp_sym_decrypt_bytea``).
    """
    if len(plaintext) > MAX_PLAINTEXT:
        raise PGPError(f"plaintext is {len(plaintext)} bytes, at most {MAX_PLAINTEXT} are allowed")
    salt = os.urandom(8)
    s2k = bytes([3, _SHA256]) + salt + bytes([_S2K_COUNT_BYTE])
    key = _derive_key(passphrase, _SHA256, salt, _decode_count(_S2K_COUNT_BYTE), 32)
    skesk = bytes([4, _AES256]) + s2k

    literal = _packet(11, (b"t" if text else b"b") + b"\x00" + b"\x00\x00\x00\x00" + plaintext)
    prefix = os.urandom(16)
    prefix += prefix[-2:]
    mdc_input = prefix + literal + _MDC_HEADER
    inner = mdc_input + hashlib.sha1(mdc_input).digest()  # noqa: S324 - SHA-1 is what MDC is
    encryptor = Cipher(algorithms.AES(key), CFB(bytes(16))).encryptor()
    seipd = b"\x01" + encryptor.update(inner) + encryptor.finalize()
    return _packet(3, skesk) + _packet(18, seipd)


def decrypt(data: bytes, passphrase: bytes) -> bytes:
    """Decrypt pgcrypto's or our own output; raise DecryptionError on a wrong key or tampering."""
    packets = _parse_packets(data)
    skesks = [p for p in packets if p.tag == 3]
    encrypted = [p for p in packets if p.tag in (9, 18)]
    if len(skesks) != 1 or len(encrypted) != 1 or packets[-1] is not encrypted[0]:
        raise UnsupportedFormatError(
            "expected one symmetric-key session packet followed by encrypted data; "
            "was this written by pgp_sym_encrypt?"
        )
    if encrypted[0].tag == 9:
        raise UnsupportedFormatError(
            "the data carries no integrity check (written with disable-mdc=1); "
            "re-encrypt it without that option"
        )
    algo, key = _session_key(skesks[0].body, passphrase)
    inner = _decrypt_seipd(encrypted[0].body, algo, key)
    return _literal_payload(_parse_packets(inner), depth=0)


def _session_key(body: bytes, passphrase: bytes) -> tuple[int, bytes]:
    if len(body) < 4 or body[0] != 4:
        raise UnsupportedFormatError("only version 4 symmetric-key session packets are supported")
    algo, s2k_type, digest = body[1], body[2], body[3]
    cipher, key_size, block = _cipher(algo)
    if s2k_type == 0:
        salt, count, rest = b"", 0, body[4:]
    elif s2k_type == 1 and len(body) >= 12:
        salt, count, rest = body[4:12], 0, body[12:]
    elif s2k_type == 3 and len(body) >= 13:
        salt, count, rest = body[4:12], _decode_count(body[12]), body[13:]
    else:
        raise UnsupportedFormatError(f"unsupported string-to-key type {s2k_type!r}")
    key = _derive_key(passphrase, digest, salt, count, key_size)
    if not rest:
        return algo, key
    decryptor = Cipher(cipher(key), CFB(bytes(block))).decryptor()
    session = decryptor.update(rest) + decryptor.finalize()
    session_algo = session[0]
    if session_algo not in _CIPHERS or len(session) - 1 != _CIPHERS[session_algo][1]:
        raise DecryptionError
    return session_algo, session[1:]


def _decrypt_seipd(body: bytes, algo: int, key: bytes) -> bytes:
    if not body or body[0] != 1:
        raise UnsupportedFormatError("only version 1 integrity-protected data is supported")
    cipher, _, block = _cipher(algo)
    if len(body) < 1 + block + 2 + 22:
        raise DecryptionError
    decryptor = Cipher(cipher(key), CFB(bytes(block))).decryptor()
    plain = decryptor.update(body[1:]) + decryptor.finalize()
    if plain[block - 2 : block] != plain[block : block + 2]:  # the quick check: a wrong key
        raise DecryptionError
    digest = hashlib.sha1(plain[:-20]).digest()  # noqa: S324 - SHA-1 is what MDC is
    if plain[-22:-20] != _MDC_HEADER or not hmac.compare_digest(digest, plain[-20:]):
        raise DecryptionError
    return plain[block + 2 : -22]


def _literal_payload(packets: list[_Packet], depth: int) -> bytes:
    if len(packets) != 1:
        raise UnsupportedFormatError("expected exactly one literal or compressed data packet")
    packet = packets[0]
    if packet.tag == 8 and depth == 0:
        return _literal_payload(_parse_packets(_decompress(packet.body)), depth + 1)
    if packet.tag != 11 or len(packet.body) < 2 or len(packet.body) < 6 + packet.body[1]:
        raise UnsupportedFormatError("expected a literal data packet inside the encrypted data")
    return packet.body[6 + packet.body[1] :]


def _decompress(body: bytes) -> bytes:
    if not body:
        raise DecryptionError
    algo, data = body[0], body[1:]
    try:
        if algo == 0:
            out = data
        elif algo in (1, 2):
            inflater = zlib.decompressobj(-15 if algo == 1 else 15)
            out = inflater.decompress(data, MAX_PLAINTEXT + 1024)
        elif algo == 3:
            out = bz2.BZ2Decompressor().decompress(data, MAX_PLAINTEXT + 1024)
        else:
            raise UnsupportedFormatError(f"unsupported compression algorithm {algo!r}")
    except (zlib.error, OSError, EOFError) as exc:
        raise DecryptionError("compressed data is corrupt") from exc
    if len(out) > MAX_PLAINTEXT + 1024:
        raise DecryptionError(f"decompressed data exceeds {MAX_PLAINTEXT} bytes")
    return out


def _cipher(algo: int) -> tuple[_CipherFactory, int, int]:
    if algo not in _CIPHERS:
        raise UnsupportedFormatError(f"unsupported cipher algorithm {algo!r}")
    return _CIPHERS[algo]


def _decode_count(coded: int) -> int:
    return (16 + (coded & 15)) << ((coded >> 4) + 6)


def _derive_key(passphrase: bytes, digest: int, salt: bytes, count: int, size: int) -> bytes:
    """RFC 4880 3.7.1: hash salt+passphrase (repeated up to count octets) until size bytes."""
    if digest not in _DIGESTS:
        raise UnsupportedFormatError(f"unsupported string-to-key digest {digest!r}")
    material = salt + passphrase
    total = max(count, len(material))
    stream = material * (total // len(material)) + material[: total % len(material)]
    key = b""
    preload = 0
    while len(key) < size:
        hasher = hashlib.new(_DIGESTS[digest])
        hasher.update(b"\x00" * preload + stream)
        key += hasher.digest()
        preload += 1
    return key[:size]


def _packet(tag: int, body: bytes) -> bytes:
    """A new-format packet with a definite length."""
    n = len(body)
    if n < 192:
        length = bytes([n])
    elif n < 8384:
        length = bytes([((n - 192) >> 8) + 192, (n - 192) & 0xFF])
    else:
        length = b"\xff" + struct.pack(">I", n)
    return bytes([0xC0 | tag]) + length + body


def _parse_packets(data: bytes) -> list[_Packet]:
    packets: list[_Packet] = []
    pos = 0
    try:
        while pos < len(data):
            tag, body, pos = _read_packet(data, pos)
            if tag != 10:  # marker packets carry nothing
                packets.append(_Packet(tag, body))
    except IndexError:
        raise DecryptionError("truncated openpgp data: wrong key or corrupt data") from None
    return packets


def _read_packet(data: bytes, pos: int) -> tuple[int, bytes, int]:
    header = data[pos]
    pos += 1
    if not header & 0x80:
        raise DecryptionError("not openpgp data: was it written by pgp_sym_encrypt?")
    if not header & 0x40:  # old format: tag in bits 5-2, length type in bits 1-0
        tag, length_type = (header >> 2) & 0x0F, header & 0x03
        if length_type == 3:
            return tag, data[pos:], len(data)
        size = 1 << length_type
        n = int.from_bytes(_take(data, pos, size), "big")
        return tag, _take(data, pos + size, n), pos + size + n
    tag = header & 0x3F
    chunks: list[bytes] = []
    while True:
        first = data[pos]
        if first < 192:
            n, pos = first, pos + 1
        elif first < 224:
            n, pos = ((first - 192) << 8) + data[pos + 1] + 192, pos + 2
        elif first == 255:
            n, pos = int.from_bytes(_take(data, pos + 1, 4), "big"), pos + 5
        else:  # partial body length: a chunk of 2**k bytes, more chunks follow
            n = 1 << (first & 0x1F)
            chunks.append(_take(data, pos + 1, n))
            pos += 1 + n
            continue
        chunks.append(_take(data, pos, n))
        return tag, b"".join(chunks), pos + n


def _take(data: bytes, pos: int, n: int) -> bytes:
    if pos + n > len(data):
        raise IndexError("truncated")
    return data[pos : pos + n]
