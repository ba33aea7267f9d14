"""mediator.keys: providers load several keys, pick the current one, and never show material."""

from __future__ import annotations

import io
import logging
import pickle
from pathlib import Path

import pytest

from tenantgate.mediator import keys as keymod
from tenantgate.mediator.keys import (
    FileKeyProvider,
    KeyConfigError,
    KeyProvider,
    Secret,
    UnknownKeyError,
)
from tenantgate.mediator.secrets import SecretInputError, read_secret_input

MATERIAL_1 = "m1-" + "a" * 40
MATERIAL_2 = "m2-" + "b" * 40


def test_secret_never_prints_itself(caplog: pytest.LogCaptureFixture) -> None:
    secret = Secret(MATERIAL_1)
    logging.getLogger("tenantgate.test").warning("key %s %r %s", secret, secret, [secret])
    shown = [repr(secret), str(secret), f"{secret}", f"{secret!r}", f"{secret:>60}", str([secret])]
    shown.append(caplog.text)
    assert all(MATERIAL_1 not in text for text in shown)
    assert secret.reveal() == MATERIAL_1


def test_secret_cannot_be_pickled() -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(Secret(MATERIAL_1))


def test_provider_holds_several_keys_and_a_current_one() -> None:
    provider = FileKeyProvider.from_lines(
        ["# rotation in progress", f"old:{MATERIAL_1}", "", f" new : {MATERIAL_2} "], "new"
    )
    assert isinstance(provider, KeyProvider)
    assert provider.current_key_id == "new"
    assert provider.key_ids() == {"old", "new"}
    assert provider.get("old").reveal() == MATERIAL_1
    assert provider.with_current("old").current_key_id == "old"
    assert MATERIAL_1 not in repr(provider)
    assert MATERIAL_2 not in repr(provider)


def test_unknown_key_id_is_refused_by_name_only() -> None:
    provider = FileKeyProvider({"k1": Secret(MATERIAL_1)}, "k1")
    with pytest.raises(UnknownKeyError) as caught:
        provider.get("k9")
    assert "'k9'" in str(caught.value)
    assert MATERIAL_1 not in str(caught.value) + repr(caught.value)


def test_current_key_must_be_configured() -> None:
    with pytest.raises(KeyConfigError, match="current key id 'k2'"):
        FileKeyProvider({"k1": Secret(MATERIAL_1)}, "k2")


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("k1:short", "at least 32"),
        ("k1:" + "x" * 20 + " " + "y" * 20, "without spaces"),
        ("bad id!:" + "x" * 40, "must match"),
        ("k1" + "x" * 40, "no ':'"),
    ],
)
def test_malformed_keys_are_refused_without_echoing_material(line: str, problem: str) -> None:
    with pytest.raises(KeyConfigError, match=problem) as caught:
        FileKeyProvider.from_lines([line], "k1")
    material = line.partition(":")[2]
    assert not material or material not in str(caught.value)


def test_duplicate_key_id_is_refused() -> None:
    with pytest.raises(KeyConfigError, match="twice"):
        FileKeyProvider.from_lines([f"k1:{MATERIAL_1}", f"k1:{MATERIAL_2}"], "k1")


def test_from_env_reads_a_file_or_a_variable(tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text(f"k1:{MATERIAL_1}\nk2:{MATERIAL_2}\n")
    key_file.chmod(0o600)
    from_file = FileKeyProvider.from_env(
        {keymod.ENV_KEYS_FILE: str(key_file), keymod.ENV_CURRENT: "k2"}
    )
    assert from_file.get("k2").reveal() == MATERIAL_2
    from_var = FileKeyProvider.from_env(
        {keymod.ENV_KEYS: f"k1:{MATERIAL_1},k2:{MATERIAL_2}", keymod.ENV_CURRENT: "k1"}
    )
    assert from_var.key_ids() == {"k1", "k2"}


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text(f"k1:{MATERIAL_1}\n")
    key_file.chmod(0o644)
    with pytest.raises(KeyConfigError, match="chmod 600"):
        FileKeyProvider.from_file(key_file, "k1")


def test_from_env_without_configuration_says_what_to_set() -> None:
    with pytest.raises(KeyConfigError, match=keymod.ENV_CURRENT):
        FileKeyProvider.from_env({})
    with pytest.raises(KeyConfigError, match=keymod.ENV_KEYS_FILE):
        FileKeyProvider.from_env({keymod.ENV_CURRENT: "k1"})


def test_generated_material_is_accepted_and_unique() -> None:
    first, second = keymod.generate_key_material(), keymod.generate_key_material()
    assert first != second
    FileKeyProvider({"a": first, "b": second}, "a")


def test_secret_input_is_one_line_from_stdin_or_a_file() -> None:
    assert read_secret_input(io.StringIO("sk_live_abc\n")).reveal() == "sk_live_abc"
    assert read_secret_input(io.BytesIO(b"sk_live_abc\r\n")).reveal() == "sk_live_abc"
    for bad in ("", "\n", "two\nlines\n", "tab\there"):
        with pytest.raises(SecretInputError):
            read_secret_input(io.StringIO(bad))
