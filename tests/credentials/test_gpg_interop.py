"""mediator.pgp against GnuPG, a second implementation (old-format headers, its own defaults)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tenantgate.mediator import pgp

KEY = "gpg-interop-key-0123456789abcdefghijklmnop"
GPG = shutil.which("gpg")
pytestmark = pytest.mark.skipif(GPG is None, reason="gpg is not installed")


def gpg(home: Path, *args: str, data: bytes) -> bytes:
    passphrase = home / "passphrase"
    passphrase.write_text(KEY)
    command = [
        str(GPG),
        "--homedir",
        str(home),
        "--batch",
        "--quiet",
        "--no-tty",
        "--pinentry-mode",
        "loopback",
        "--passphrase-file",
        str(passphrase),
        *args,
    ]
    done = subprocess.run(command, input=data, capture_output=True, check=True, timeout=60)
    return done.stdout


@pytest.fixture
def gpg_home(tmp_path: Path) -> Path:
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    return home


@pytest.mark.parametrize(
    "options",
    [
        [],
        ["--cipher-algo", "AES128", "--s2k-digest-algo", "SHA1"],
        ["--cipher-algo", "AES256", "--s2k-digest-algo", "SHA256", "--compress-algo", "none"],
        ["--compress-algo", "zlib"],
        ["--compress-algo", "bzip2"],
        ["--s2k-mode", "1"],
    ],
)
def test_gpg_output_decrypts_in_python(gpg_home: Path, options: list[str]) -> None:
    for data in (b"sk_live_from_gpg", bytes(range(256)) * 400):
        ciphertext = gpg(gpg_home, *options, "--s2k-count", "65536", "--symmetric", data=data)
        assert pgp.decrypt(ciphertext, KEY.encode()) == data


def test_python_output_decrypts_in_gpg(gpg_home: Path) -> None:
    text = b"sk_live_to_gpg"
    assert gpg(gpg_home, "--decrypt", data=pgp.encrypt(text, KEY.encode())) == text
    binary = bytes(range(256)) * 400  # marked binary: gpg would rewrite line ends of text
    ciphertext = pgp.encrypt(binary, KEY.encode(), text=False)
    assert gpg(gpg_home, "--decrypt", data=ciphertext) == binary
