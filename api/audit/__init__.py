"""The audit trail, searchable by auditors; nobody can change it (enforced in the database)."""
