"""Field types shared by the service's settings and the platforms' settings mixins."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, SecretStr


def _unset_if_blank(value: object) -> object:
    # `FOO=` in compose files and .env templates means "not configured", not "the empty string".
    return None if isinstance(value, str) and not value.strip() else value


OptionalSecret = Annotated[SecretStr | None, BeforeValidator(_unset_if_blank)]
OptionalText = Annotated[str | None, BeforeValidator(_unset_if_blank)]
