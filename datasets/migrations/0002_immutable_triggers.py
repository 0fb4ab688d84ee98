"""Database-level immutability of snapshots.

A snapshot's items never change, and a snapshot's content columns never change; only the
licence and citation a manager fills in may be updated. The models' ``save()`` refuses the
rest; these triggers make the database refuse it too (PostgreSQL and SQLite), so no admin
action, bulk ``update()`` or raw SQL rewrites a published dataset. Deleting stays possible.
"""

from django.db import migrations

MESSAGE = "dataset snapshots are immutable; make a new snapshot instead"
SNAPSHOT_CONTENT = [
    "project_id", "name", "version", "description", "content_hash", "selection", "split_options",
    "split_counts", "leak_check", "warnings", "n_items", "n_cells", "supersedes_id",
    "created_by_id", "created_at",
]
TRIGGERS = [
    ("datasets_snapshotitem", None),
    ("datasets_datasetsnapshot", SNAPSHOT_CONTENT),
]


def _of(columns):
    return f"UPDATE OF {', '.join(columns)}" if columns else "UPDATE"


def _statements(vendor: str, forward: bool) -> list[str]:
    if vendor == "sqlite":
        if not forward:
            return [f"DROP TRIGGER IF EXISTS {t}_immutable;" for t, _ in TRIGGERS]
        return [
            f"CREATE TRIGGER {t}_immutable BEFORE {_of(cols)} ON {t} "
            f"FOR EACH ROW BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;"
            for t, cols in TRIGGERS
        ]
    if vendor == "postgresql":
        if not forward:
            return [f"DROP TRIGGER IF EXISTS {t}_immutable ON {t};" for t, _ in TRIGGERS] + [
                "DROP FUNCTION IF EXISTS datasets_refuse_update();"]
        return [
            "CREATE OR REPLACE FUNCTION datasets_refuse_update() RETURNS trigger AS $$ BEGIN "
            f"RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation'; "
            "END; $$ LANGUAGE plpgsql;",
            *[f"CREATE TRIGGER {t}_immutable BEFORE {_of(cols)} ON {t} "
              "FOR EACH ROW EXECUTE FUNCTION datasets_refuse_update();" for t, cols in TRIGGERS],
        ]
    raise RuntimeError(f"no immutability trigger written for database vendor {vendor!r}")


def forward(apps, schema_editor):
    for sql in _statements(schema_editor.connection.vendor, True):
        schema_editor.execute(sql)


def reverse(apps, schema_editor):
    for sql in _statements(schema_editor.connection.vendor, False):
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("datasets", "0001_snapshots_items_exports")]
    operations = [migrations.RunPython(forward, reverse)]
