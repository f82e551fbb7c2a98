"""Request and response models of notice subscriptions and notices."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.request_model import RequestModel

Kind = Literal["bike_moved", "stolen_seen", "stolen_frame"]
ChannelName = Literal["email", "webhook", "apprise"]
Status = Literal["pending", "sent", "failed", "cancelled"]


class SubscriptionIn(RequestModel):
    """Where to send which kinds of notice: an e-mail address, a webhook URL (https), or an
    apprise URL of an SMS/chat service (``twilio://...``, ``tgram://...``)."""

    channel: ChannelName = Field(examples=["email"])
    address: str = Field(min_length=3, max_length=2000, examples=["desk@police.example"])
    kinds: list[Kind] = Field(
        min_length=1,
        max_length=3,
        description="bike_moved (residents: your bike's 'alert me' watch); stolen_seen and "
        "stolen_frame (duty desk: a stolen bike read, a registration matching one)",
        examples=[["stolen_seen", "stolen_frame"]],
    )
    enabled: bool = True


class SubscriptionPatch(RequestModel):
    """Changes to a subscription (fields left out stay as they are)."""

    address: str | None = Field(default=None, min_length=3, max_length=2000)
    kinds: list[Kind] | None = Field(default=None, min_length=1, max_length=3)
    enabled: bool | None = None


class SubscriptionOut(BaseModel):
    """A subscription. An apprise URL is shown with its tokens masked."""

    subscription_id: int
    channel: ChannelName
    address: str
    kinds: list[Kind]
    enabled: bool
    created_at: datetime
    webhook_secret: str | None = Field(
        default=None,
        description="the HMAC-SHA256 key of this webhook's signatures: shown once, when the "
        "subscription is created (docs/security.md, 'Webhook signatures')",
    )


class AttemptOut(BaseModel):
    """One delivery attempt."""

    attempt: int
    started_at: datetime
    duration_ms: float
    outcome: Literal["sent", "retry", "failed"]
    error: str


class NoticeOut(BaseModel):
    """A notice and its delivery state."""

    notice_id: int
    created_at: datetime
    kind: Kind
    alert_id: int | None
    flag_id: int | None
    bike_id: int
    user_id: int
    subscription_id: int
    channel: ChannelName
    status: Status
    attempts: int
    next_attempt_at: datetime
    last_error: str
    sent_at: datetime | None
    history: list[AttemptOut] = Field(default_factory=list)
