"""An app module that cannot be imported: its import raises (a missing setting, say)."""

raise RuntimeError("import-fail-app: DATABASE_URL is not set")
