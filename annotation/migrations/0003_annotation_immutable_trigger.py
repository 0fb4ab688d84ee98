"""Database-level immutability of submitted annotation revisions.

The services never update an Annotation row; this trigger makes the database refuse it
too (PostgreSQL and SQLite), so no code path, admin action or raw SQL can rewrite a
submitted mask. Deleting rows (cascade from a project) stays possible.
"""

from django.db import migrations

GUARDED = [
    "assignment_id", "guideline_version_id", "revision", "mask", "sha256", "height", "width",
    "dtype", "instance_count", "source", "submitted_at", "created_by_id", "idempotency_key",
]
MESSAGE = "annotation revisions are immutable once submitted; submit a new revision instead"

SQLITE_FORWARD = [
    f"""
    CREATE TRIGGER annotation_annotation_immutable
    BEFORE UPDATE ON annotation_annotation
    FOR EACH ROW WHEN OLD.submitted_at IS NOT NULL AND ({" OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in GUARDED)})
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;
    """,
]
SQLITE_REVERSE = ["DROP TRIGGER IF EXISTS annotation_annotation_immutable;"]

POSTGRES_FORWARD = [
    f"""
    CREATE OR REPLACE FUNCTION annotation_annotation_immutable() RETURNS trigger AS $$
    BEGIN
        IF OLD.submitted_at IS NOT NULL AND ({" OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in GUARDED)}) THEN
            RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    END;
    $$ LANGUAGE plpgsql;
    """,
    """
    CREATE TRIGGER annotation_annotation_immutable
    BEFORE UPDATE ON annotation_annotation
    FOR EACH ROW EXECUTE FUNCTION annotation_annotation_immutable();
    """,
]
POSTGRES_REVERSE = [
    "DROP TRIGGER IF EXISTS annotation_annotation_immutable ON annotation_annotation;",
    "DROP FUNCTION IF EXISTS annotation_annotation_immutable();",
]

STATEMENTS = {
    "sqlite": (SQLITE_FORWARD, SQLITE_REVERSE),
    "postgresql": (POSTGRES_FORWARD, POSTGRES_REVERSE),
}


def _run(schema_editor, index: int) -> None:
    vendor = schema_editor.connection.vendor
    if vendor not in STATEMENTS:
        raise RuntimeError(f"no immutability trigger written for database vendor {vendor!r}")
    for sql in STATEMENTS[vendor][index]:
        schema_editor.execute(sql)


def forward(apps, schema_editor):
    _run(schema_editor, 0)


def reverse(apps, schema_editor):
    _run(schema_editor, 1)


class Migration(migrations.Migration):
    dependencies = [("annotation", "0002_initial")]
    operations = [migrations.RunPython(forward, reverse)]
