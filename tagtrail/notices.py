"""The notice sender built from the settings, and run beside the API or the demo."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from tagtrail.settings import Settings

if TYPE_CHECKING:
    from api.notifications.sender import NoticeSender


def notice_sender(settings: Settings, database_url: str) -> NoticeSender:
    """A sender over every channel the settings configure (e-mail only with ``smtp_host``)."""
    from api.notifications.channels import ChannelConfig, SmtpConfig, build_channels
    from api.notifications.sender import NoticeSender, RetryPolicy

    smtp = None
    if settings.smtp_host:
        smtp = SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            sender=settings.smtp_from,
            ca_file=str(settings.smtp_ca_file) if settings.smtp_ca_file else None,
        )
    channels = build_channels(
        ChannelConfig(
            smtp=smtp,
            timeout_s=settings.notify_timeout_s,
            allow_private_targets=settings.notify_allow_private_targets,
            apprise_schemes=tuple(settings.notify_apprise_schemes),
        )
    )
    policy = RetryPolicy(
        max_attempts=settings.notify_max_attempts,
        backoff_s=settings.notify_backoff_s,
        backoff_max_s=settings.notify_backoff_max_s,
    )
    return NoticeSender(
        database_url=database_url,
        channels=channels,
        policy=policy,
        console_url=settings.console_url_resolved,
        poll_s=settings.notify_poll_s,
    )


@contextmanager
def running_notice_sender(settings: Settings, database_url: str) -> Iterator[None]:
    """Deliver notices on a background thread while the block runs (if ``notify_enabled``)."""
    if not settings.notify_enabled:
        yield
        return
    from api.notifications.sender import start_sender

    thread, stop = start_sender(notice_sender(settings, database_url))
    try:
        yield
    finally:
        stop.set()
        thread.join(settings.notify_poll_s + settings.notify_timeout_s + 1)
