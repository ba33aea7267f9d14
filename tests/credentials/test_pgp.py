"""mediator.pgp on its own: round trips, tampering, wrong keys, malformed input."""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenantgate.mediator import pgp

KEY = b"unit-test-key-0123456789abcdefghijklmnopqrstu"


def test_round_trip_of_text_and_binary() -> None:
    for data in (b"", b"sk_live_x", os.urandom(300), os.urandom(70_000)):
        assert pgp.decrypt(pgp.encrypt(data, KEY), KEY) == data
        assert pgp.decrypt(pgp.encrypt(data, KEY, text=False), KEY) == data


def test_two_encryptions_of_one_secret_differ() -> None:
    assert pgp.encrypt(b"same", KEY) != pgp.encrypt(b"same", KEY)


def test_every_flipped_bit_is_refused_with_a_decryption_error() -> None:
    ciphertext = pgp.encrypt(b"sk_live_0123456789", KEY)
    for position in range(len(ciphertext)):
        for bit in (0x01, 0x80):
            tampered = bytearray(ciphertext)
            tampered[position] ^= bit
            with pytest.raises(pgp.DecryptionError):
                pgp.decrypt(bytes(tampered), KEY)


def test_mdc_mismatch_says_wrong_key_or_corrupt_data() -> None:
    ciphertext = bytearray(pgp.encrypt(b"sk_live_0123456789", KEY))
    ciphertext[-1] ^= 0x01  # inside the MDC digest
    with pytest.raises(pgp.DecryptionError, match="wrong key or corrupt data"):
        pgp.decrypt(bytes(ciphertext), KEY)


def test_truncated_and_extended_ciphertexts_are_refused() -> None:
    ciphertext = pgp.encrypt(b"sk_live_0123456789", KEY)
    for bad in (ciphertext[:-1], ciphertext[:20], ciphertext + b"\x00", b"", b"not pgp at all"):
        with pytest.raises(pgp.DecryptionError):
            pgp.decrypt(bad, KEY)


def test_wrong_key_is_refused_and_the_error_names_no_key() -> None:
    ciphertext = pgp.encrypt(b"sk_live_0123456789", KEY)
    with pytest.raises(pgp.DecryptionError) as caught:
        pgp.decrypt(ciphertext, b"another-key-0123456789abcdefghijklmnopqrstu")
    text = f"{caught.value!s} {caught.value!r}"
    assert KEY.decode() not in text
    assert "another-key" not in text
    assert "sk_live" not in text


def test_old_format_headers_are_read() -> None:
    new = pgp.encrypt(b"sk_live_old_format", KEY)
    # rewrite the session-key packet with an old-format header (tag << 2 | length type 1);
    # SEIPD (tag 18) has no old-format form, old headers carry tags below 16 only
    skesk_len = new[1]
    skesk = new[2 : 2 + skesk_len]
    old = bytes([0x80 | (3 << 2) | 1]) + struct.pack(">H", len(skesk)) + skesk
    assert pgp.decrypt(old + new[2 + skesk_len :], KEY) == b"sk_live_old_format"


def test_plaintext_over_the_cap_is_refused() -> None:
    with pytest.raises(pgp.PGPError, match="at most"):
        pgp.encrypt(b"x" * (pgp.MAX_PLAINTEXT + 1), KEY)


@settings(max_examples=200, deadline=None)
@given(plaintext=st.binary(max_size=2000), key=st.binary(min_size=1, max_size=64))
def test_any_plaintext_round_trips_under_any_key(plaintext: bytes, key: bytes) -> None:
    assert pgp.decrypt(pgp.encrypt(plaintext, key), key) == plaintext


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_single_byte_change_is_refused(data: st.DataObject) -> None:
    ciphertext = bytearray(pgp.encrypt(b"sk_live_property", KEY))
    position = data.draw(st.integers(0, len(ciphertext) - 1))
    ciphertext[position] ^= data.draw(st.integers(1, 255))
    with pytest.raises(pgp.DecryptionError):
        pgp.decrypt(bytes(ciphertext), KEY)


@settings(max_examples=500, deadline=None)
@given(garbage=st.binary(max_size=300))
def test_arbitrary_bytes_only_ever_raise_decryption_error(garbage: bytes) -> None:
    for candidate in (garbage, pgp.encrypt(b"x", KEY)[:18] + garbage):
        with pytest.raises(pgp.DecryptionError):
            pgp.decrypt(candidate, KEY)
