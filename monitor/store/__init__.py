"""The store: the only package that talks SQL. `core.Store` opens the database; the modules
beside it (publishing, quarantine, rules, checklists, bulletins, outbox, locks, reads,
reconcile) are its queries, `models/` its tables and `migrations/` their history. `records`
words a stored change for people (no SQLAlchemy); `plain_reads` lists changes without the ORM."""
