"""Accounts, roles and login (OAuth2 password flow issuing signed, expiring bearer tokens)."""
