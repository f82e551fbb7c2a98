"""Database side of the engine: migrations, the COPY writer and read-side queries."""
