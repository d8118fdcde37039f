"""Running the Alembic migrations from code (the CLI, the tests) without an ini file."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config


def migrations_dir() -> Path:
    packaged = Path(__file__).resolve().parent.parent / "_migrations"  # inside an installed wheel
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[3] / "migrations"  # an editable install or a checkout
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError("the migrations directory is neither packaged nor next to the source tree")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    # An attribute, not a main option: configparser would choke on a % in a password.
    config.attributes["database_url"] = database_url
    config.attributes["configure_logging"] = False
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)
