"""Notices: alerts reach people by e-mail, signed webhook, or SMS/chat through apprise.

- ``store``: the SQL (subscriptions, the outbox of migration 0095, attempts);
- ``service``/``views``/``schemas``: preferences at /api/v1/notifications;
- ``message``: what a notice says (never where);
- ``signing``: HMAC-SHA256 webhook signatures;
- ``channels``: delivery (SMTP, httpx, apprise), raising ``DeliveryError``;
- ``sender``: the worker that delivers due notices with exponential backoff.
"""
