"""Where the schema files live: the source checkout, or the folder the wheel installs them to.

The wheel carries `sql/`, `migrations/` and `tools/` as data files under
`<prefix>/share/tenantgate/` (pyproject.toml, [tool.setuptools.data-files]); a checkout (editable
install, tests) uses its own.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

from alembic.config import Config

CHECKOUT = Path(__file__).resolve().parents[2]
INSTALLED = Path(sysconfig.get_path("data")) / "share" / "tenantgate"


def _complete(root: Path) -> bool:
    return (root / "migrations" / "env.py").is_file() and (root / "sql").is_dir()


def schema_root() -> Path:
    """The folder holding `sql/` and `migrations/` (the checkout's when neither is complete:
    alembic_config() then says what is missing)."""
    for root in (CHECKOUT, INSTALLED):
        if _complete(root):
            return root
    return CHECKOUT


def alembic_config() -> Config:
    """The Alembic configuration, built here so it works without pyproject.toml."""
    root = schema_root()
    if not _complete(root):
        raise FileNotFoundError(
        f"tenantgate's migrations are missing (looked in {CHECKOUT} and {INSTALLED}): "
            "reinstall the package, e.g. `pipx reinstall tenantgate`"
        )
    config = Config()
    config.set_main_option("script_location", str(root / "migrations").replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    config.set_main_option("prepend_sys_path", str(root).replace("%", "%%"))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    return config
