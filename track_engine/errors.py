"""Exception hierarchy of the track engine.

EngineError
├── MigrationError   -- a migration failed, or an applied one was edited afterwards
└── NotFoundError    -- a lookup (plate, bike, tag) matched nothing
"""


class EngineError(Exception):
    """Base of every error the track engine raises on purpose."""


class MigrationError(EngineError):
    """A migration could not be applied, or the database disagrees with the migration files."""


class NotFoundError(EngineError):
    """A requested plate, bike, tag or reader does not exist."""
