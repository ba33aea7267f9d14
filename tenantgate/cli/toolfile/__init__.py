"""Tools files: load, check against the database, compile to SQL, apply like a migration."""
