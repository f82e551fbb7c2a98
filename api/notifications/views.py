"""/api/v1/notifications: a user's notice subscriptions and notices; the admins' outbox."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from api.deps import AdminDep, ConfigDep, ConnDep, IdPath, Principal, require
from api.notifications import service, store
from api.notifications.schemas import (
    NoticeOut,
    Status,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionPatch,
)
from api.pagination import Page, PageDep, page_of

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])

# The roles with something to hear of (api/notifications/service.py KINDS_BY_ROLE).
SubscriberDep = Annotated[Principal, require("resident", "officer", "admin")]


def _policy(config: ConfigDep) -> service.TargetPolicy:
    return service.TargetPolicy(
        allow_private=config.notify_allow_private_targets,
        apprise_schemes=config.notify_apprise_schemes,
    )


@router.get("/subscriptions")
def list_subscriptions(conn: ConnDep, principal: SubscriberDep) -> list[SubscriptionOut]:
    """Your notice subscriptions. Roles: resident, officer, admin."""
    return [service.subscription_out(s) for s in store.subscriptions_of(conn, principal.user_id)]


@router.post("/subscriptions", status_code=status.HTTP_201_CREATED, responses={403: {}, 422: {}})
def subscribe(
    conn: ConnDep, principal: SubscriberDep, config: ConfigDep, body: SubscriptionIn
) -> SubscriptionOut:
    """Hear of alerts by e-mail, signed webhook or an apprise SMS/chat URL. Residents may
    subscribe to ``bike_moved``, the duty desk to ``stolen_seen`` and ``stolen_frame``. A
    webhook's signing secret is in this answer only. Roles: resident, officer, admin."""
    return service.subscribe(conn, body=body, by=principal, policy=_policy(config))


@router.patch("/subscriptions/{subscription_id}", responses={403: {}, 404: {}, 422: {}})
def change_subscription(
    conn: ConnDep,
    principal: SubscriberDep,
    config: ConfigDep,
    subscription_id: IdPath,
    body: SubscriptionPatch,
) -> SubscriptionOut:
    """Change the address, kinds or enabled flag of your subscription. Roles: resident,
    officer, admin."""
    return service.change(
        conn, subscription_id=subscription_id, body=body, by=principal, policy=_policy(config)
    )


@router.delete(
    "/subscriptions/{subscription_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {}},
)
def unsubscribe(conn: ConnDep, principal: SubscriberDep, subscription_id: IdPath) -> Response:
    """Remove your subscription; its notices not yet sent are cancelled. Roles: resident,
    officer, admin."""
    service.unsubscribe(conn, subscription_id=subscription_id, by=principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/notices")
def my_notices(
    conn: ConnDep,
    principal: SubscriberDep,
    page: PageDep,
    state: Annotated[Status | None, Query(alias="status")] = None,
) -> Page[NoticeOut]:
    """Notices sent (or being sent) to you, newest first, with every delivery attempt.
    Roles: resident, officer, admin."""
    rows, total = store.list_notices(
        conn, user_id=principal.user_id, status=state, limit=page.limit, offset=page.offset
    )
    return page_of([service.notice_out(conn, n) for n in rows], total, page)


@router.get("/outbox")
def outbox(
    conn: ConnDep,
    principal: AdminDep,
    page: PageDep,
    state: Annotated[Status | None, Query(alias="status")] = None,
) -> Page[NoticeOut]:
    """Every user's notices, newest first (``status=failed``: those given up on), with their
    attempts. Roles: admin."""
    del principal
    rows, total = store.list_notices(
        conn, user_id=None, status=state, limit=page.limit, offset=page.offset
    )
    return page_of([service.notice_out(conn, n) for n in rows], total, page)


@router.post(
    "/outbox/{notice_id}/retry", status_code=status.HTTP_204_NO_CONTENT, responses={404: {}}
)
def retry_notice(conn: ConnDep, principal: AdminDep, notice_id: IdPath) -> Response:
    """Queue a failed notice for one more attempt, now. Roles: admin."""
    service.retry(conn, notice_id=notice_id, by=principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
