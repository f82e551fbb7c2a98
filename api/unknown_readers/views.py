"""/api/v1/unknown-readers: reader ids not in the deployment whose reads were held apart."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ConnDep, OperatorDep
from api.pagination import Page, PageDep
from api.unknown_readers.schemas import UnknownReaderOut
from api.unknown_readers.service import list_unknown

router = APIRouter(prefix="/api/v1/unknown-readers", tags=["readers"])


@router.get("")
def unknown_readers(conn: ConnDep, principal: OperatorDep, page: PageDep) -> Page[UnknownReaderOut]:
    """Reader ids the deployment registry does not know that sent reads, most recently heard
    first: how many reads and tags, when, through which gateways. Their reads were held
    apart: never a bike's position or last seen. Roles: admin, officer, operator."""
    del principal
    return list_unknown(conn, page=page)
