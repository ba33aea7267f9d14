"""mediator.pgp against the real pgcrypto, both ways, on every PostgreSQL version at hand."""

from __future__ import annotations

import psycopg
import pytest

from tenantgate.mediator import pgp

KEY = "interop-test-key-0123456789abcdefghijklmnop"
PAYLOADS = {
    "api-key": "sk_live_51HxYz0123456789abcdef",
    "unicode": "clé-ünïcödé-密钥-🔑",
    "100k": "abcdefghij" * 10_000,  # long enough for pgcrypto's partial body lengths
}
PGCRYPTO_OPTIONS = [
    "",  # pgcrypto's default: AES-128, iterated+salted S2K with SHA-1
    "cipher-algo=aes256",
    "s2k-digest-algo=sha256",
    "cipher-algo=aes256, s2k-digest-algo=sha256",
    "cipher-algo=aes192",
    "cipher-algo=3des",
    "compress-algo=1",
    "compress-algo=2",
    "compress-algo=2, compress-level=9, cipher-algo=aes256",
    "sess-key=1",
    "sess-key=1, cipher-algo=aes256, s2k-digest-algo=sha256",
    "s2k-mode=0",
    "s2k-mode=1",
    "s2k-mode=3, s2k-count=1024",
    "s2k-digest-algo=md5",
    "unicode-mode=1",
]

Conn = psycopg.Connection[tuple[object, ...]]


def sql_encrypt(conn: Conn, text: str, options: str) -> bytes:
    row = conn.execute("select pgp_sym_encrypt(%s, %s, %s)", (text, KEY, options)).fetchone()
    assert row is not None
    return bytes(row[0])  # type: ignore[arg-type]


def test_pgcrypto_output_decrypts_in_python(pgcrypto_conn: Conn) -> None:
    for options in PGCRYPTO_OPTIONS:
        for name, text in PAYLOADS.items():
            ciphertext = sql_encrypt(pgcrypto_conn, text, options)
            assert pgp.decrypt(ciphertext, KEY.encode()).decode() == text, (options, name)


def test_pgcrypto_binary_output_decrypts_in_python(pgcrypto_conn: Conn) -> None:
    data = bytes(range(256)) * 64
    row = pgcrypto_conn.execute(
        "select pgp_sym_encrypt_bytea(%s, %s, 'compress-algo=1')", (data, KEY)
    ).fetchone()
    assert row is not None
    assert pgp.decrypt(bytes(row[0]), KEY.encode()) == data  # type: ignore[arg-type]


def test_python_output_decrypts_in_pgcrypto(pgcrypto_conn: Conn) -> None:
    for name, text in PAYLOADS.items():
        ciphertext = pgp.encrypt(text.encode(), KEY.encode())
        row = pgcrypto_conn.execute(
            "select pgp_sym_decrypt(%s, %s), pgp_key_id(%s)", (ciphertext, KEY, ciphertext)
        ).fetchone()
        assert row == (text, "SYMKEY"), name


def test_python_binary_output_decrypts_in_pgcrypto(pgcrypto_conn: Conn) -> None:
    data = bytes(range(256)) * 64
    ciphertext = pgp.encrypt(data, KEY.encode(), text=False)
    row = pgcrypto_conn.execute(
        "select pgp_sym_decrypt_bytea(%s, %s)", (ciphertext, KEY)
    ).fetchone()
    assert row is not None
    assert bytes(row[0]) == data  # type: ignore[arg-type]


def test_python_writes_aes256_with_sha256_s2k_and_a_small_count() -> None:
    ciphertext = pgp.encrypt(b"x", KEY.encode())
    # new-format SKESK: tag 3, length 13, v4, AES-256 (9), S2K mode 3, SHA-256 (8), salt, count 0
    assert ciphertext[:6] == bytes([0xC3, 13, 4, 9, 3, 8])
    assert ciphertext[14] == 0  # coded count 0 = 1,024 octets
    assert ciphertext[15] == 0xC0 | 18  # then integrity-protected data (SEIPD)
    assert ciphertext[17] == 1  # SEIPD version 1 (with MDC)


def test_dba_can_reencrypt_in_sql_and_python_still_reads_it(pgcrypto_conn: Conn) -> None:
    ciphertext = pgp.encrypt(PAYLOADS["api-key"].encode(), KEY.encode())
    row = pgcrypto_conn.execute(
        "select pgp_sym_encrypt(pgp_sym_decrypt(%s, %s), 'new-key-0123456789abcdefghijklmnopq', "
        "'cipher-algo=aes256')",
        (ciphertext, KEY),
    ).fetchone()
    assert row is not None
    new_key = b"new-key-0123456789abcdefghijklmnopq"
    plain = pgp.decrypt(bytes(row[0]), new_key)  # type: ignore[arg-type]
    assert plain.decode() == PAYLOADS["api-key"]


def test_pgcrypto_refuses_python_output_under_a_wrong_key(pgcrypto_conn: Conn) -> None:
    ciphertext = pgp.encrypt(b"secret", KEY.encode())
    with pytest.raises(
        psycopg.errors.ExternalRoutineInvocationException, match="Wrong key or corrupt data"
    ):
        pgcrypto_conn.execute("select pgp_sym_decrypt(%s, 'another-key')", (ciphertext,))


def test_data_without_mdc_is_refused(pgcrypto_conn: Conn) -> None:
    ciphertext = sql_encrypt(pgcrypto_conn, "secret", "disable-mdc=1")
    with pytest.raises(pgp.UnsupportedFormatError, match="no integrity check"):
        pgp.decrypt(ciphertext, KEY.encode())


def test_every_flipped_byte_of_pgcrypto_output_is_refused(pgcrypto_conn: Conn) -> None:
    for options in ("", "cipher-algo=aes256, s2k-digest-algo=sha256, compress-algo=2"):
        ciphertext = sql_encrypt(pgcrypto_conn, PAYLOADS["api-key"], options)
        for position in range(len(ciphertext)):
            tampered = bytearray(ciphertext)
            tampered[position] ^= 0x01
            with pytest.raises(pgp.DecryptionError) as caught:
                pgp.decrypt(bytes(tampered), KEY.encode())
            assert KEY not in str(caught.value)
