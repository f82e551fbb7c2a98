"""Notice preferences: who may subscribe to what, where; and the outbox as users see it.

Residents hear of their own bikes' "alert me" watches (``bike_moved``); the duty desk (admin,
officer) of stolen bikes read (``stolen_seen``) and registrations matching one
(``stolen_frame``). The database's fan-out (migration 0095) applies the same rule again at
alert time, and the sender once more at delivery, so a role change takes effect at once.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import asdict

import apprise
import psycopg

from api.deps import Principal
from api.errors import ForbiddenError, InvalidInputError
from api.notifications import store
from api.notifications.channels import TargetRefusedError, check_apprise_url, check_webhook_url
from api.notifications.schemas import (
    AttemptOut,
    NoticeOut,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionPatch,
)
from api.registry import audit
from track_engine.errors import NotFoundError

KINDS_BY_ROLE = {
    "resident": frozenset({"bike_moved"}),
    "officer": frozenset({"stolen_seen", "stolen_frame"}),
    "admin": frozenset({"stolen_seen", "stolen_frame"}),
}
# One address, no display name, no line breaks (they would be header injection).
_EMAIL = re.compile(r"^[^@\s<>\",;]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")


class TargetPolicy:
    """Which webhook and apprise targets this deployment lets users subscribe with."""

    def __init__(self, *, allow_private: bool, apprise_schemes: tuple[str, ...]) -> None:
        self.allow_private = allow_private
        self.apprise_schemes = apprise_schemes

    def check(self, channel: str, address: str) -> None:
        """InvalidInputError (422) if the address is not usable on the channel."""
        try:
            if channel == "email":
                if not _EMAIL.match(address):
                    raise TargetRefusedError("not an e-mail address (name@example.org)")
            elif channel == "webhook":
                check_webhook_url(address, allow_private=self.allow_private)
            else:
                check_apprise_url(address, schemes=self.apprise_schemes)
        except TargetRefusedError as exc:
            raise InvalidInputError(str(exc)) from exc


def _check_kinds(by: Principal, kinds: list[str]) -> None:
    allowed = KINDS_BY_ROLE.get(by.role, frozenset())
    refused = sorted(set(kinds) - allowed)
    if refused:
        raise ForbiddenError(
            f"a {by.role} may not subscribe to {', '.join(refused)}; "
            f"allowed: {', '.join(sorted(allowed)) or 'none'}"
        )


def _shown_address(sub: store.Subscription) -> str:
    if sub.channel != "apprise":
        return sub.address
    plugin = apprise.Apprise.instantiate(sub.address)
    if plugin is None:  # checked at subscription; a newer apprise might refuse it
        return "(unusable apprise URL)"
    return str(plugin.url(privacy=True))  # type: ignore[no-untyped-call]


def subscription_out(sub: store.Subscription, *, with_secret: bool = False) -> SubscriptionOut:
    """Response model of a subscription (the webhook secret only when asked)."""
    return SubscriptionOut.model_validate(
        {
            **asdict(sub),
            "address": _shown_address(sub),
            "webhook_secret": sub.webhook_secret if with_secret else None,
        }
    )


def _audit(
    conn: psycopg.Connection, by: Principal, action: str, sub_id: int, **detail: object
) -> None:
    audit.append(
        conn, actor=by.username, role=by.role, action=action,
        subject=f"subscription:{sub_id}", remote_addr=by.remote_addr, detail=dict(detail),
    )  # fmt: skip


def subscribe(
    conn: psycopg.Connection, *, body: SubscriptionIn, by: Principal, policy: TargetPolicy
) -> SubscriptionOut:
    """Add a subscription of the caller; a webhook gets a new random signing secret."""
    _check_kinds(by, list(body.kinds))
    policy.check(body.channel, body.address)
    secret = secrets.token_urlsafe(32) if body.channel == "webhook" else None
    sub = store.add_subscription(
        conn, user_id=by.user_id, channel=body.channel, address=body.address,
        kinds=sorted(set(body.kinds)), webhook_secret=secret, enabled=body.enabled,
    )  # fmt: skip
    _audit(conn, by, "notice.subscribe", sub.subscription_id,
           channel=sub.channel, kinds=sub.kinds)  # fmt: skip
    return subscription_out(sub, with_secret=True)


def _own(conn: psycopg.Connection, subscription_id: int, by: Principal) -> store.Subscription:
    sub = store.subscription(conn, subscription_id, user_id=by.user_id)
    if sub is None:  # someone else's answers exactly like a missing one
        raise NotFoundError(f"no subscription {subscription_id}")
    return sub


def change(
    conn: psycopg.Connection,
    *,
    subscription_id: int,
    body: SubscriptionPatch,
    by: Principal,
    policy: TargetPolicy,
) -> SubscriptionOut:
    """Change the caller's subscription."""
    sub = _own(conn, subscription_id, by)
    changes = body.model_dump(exclude_none=True)
    if "kinds" in changes:
        _check_kinds(by, changes["kinds"])
        changes["kinds"] = sorted(set(changes["kinds"]))
    if "address" in changes:
        policy.check(sub.channel, changes["address"])
    store.update_subscription(conn, subscription_id, changes)
    _audit(conn, by, "notice.subscription_change", subscription_id, changed=sorted(changes))
    return subscription_out(_own(conn, subscription_id, by))


def unsubscribe(conn: psycopg.Connection, *, subscription_id: int, by: Principal) -> None:
    """Remove the caller's subscription; its pending notices are cancelled."""
    _own(conn, subscription_id, by)
    store.remove_subscription(conn, subscription_id)
    _audit(conn, by, "notice.unsubscribe", subscription_id)


def notice_out(conn: psycopg.Connection, notice: store.Notice) -> NoticeOut:
    """Response model of a notice with its delivery attempts."""
    history = [
        AttemptOut.model_validate(asdict(a)) for a in store.attempts_of(conn, notice.notice_id)
    ]
    return NoticeOut.model_validate({**asdict(notice), "history": history})


def retry(conn: psycopg.Connection, *, notice_id: int, by: Principal) -> None:
    """An admin puts a failed notice back in the queue (one more attempt, due now)."""
    if not store.requeue(conn, notice_id):
        raise NotFoundError(f"no failed notice {notice_id}")
    audit.append(
        conn, actor=by.username, role=by.role, action="notice.retry",
        subject=f"notice:{notice_id}", remote_addr=by.remote_addr,
    )  # fmt: skip
