"""Shared request parameter types, so every route validates the same way."""

from __future__ import annotations

from typing import Annotated

from litestar.params import PathParameter

__all__ = ["Id"]

# A row id in a path: a positive bigint. Anything else is a 400, never a database error.
Id = Annotated[int, PathParameter(ge=1, le=2**63 - 1)]
