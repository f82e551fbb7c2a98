"""Offset pagination shared by every list endpoint."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

T = TypeVar("T")


class PageParams(BaseModel):
    """``limit`` (1–200) items starting at ``offset``."""

    limit: int = 50
    offset: int = 0


def _page_params(
    limit: Annotated[int, Query(ge=1, le=200, description="items per page")] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="items to skip")] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


PageDep = Annotated[PageParams, Depends(_page_params)]


class Page(BaseModel, Generic[T]):
    """One page of a list with the total count."""

    items: list[T]
    total: int
    limit: int
    offset: int


def page_of(items: list[T], total: int, params: PageParams) -> Page[T]:
    """Wrap a slice of results."""
    return Page[T](items=items, total=total, limit=params.limit, offset=params.offset)
