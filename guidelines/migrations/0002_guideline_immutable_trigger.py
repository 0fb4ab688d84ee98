"""Database-level immutability of published guideline versions.

Once a version leaves ``draft`` its content (title, body, rules, changelog, number,
project) may not change, and its status may only move published -> retired. The services
enforce the same; this trigger makes the database refuse it on PostgreSQL and SQLite.
"""

from django.db import migrations

GUARDED = ["project_id", "version", "title", "body", "rules", "changelog", "published_at",
           "published_by_id"]
MESSAGE = "a published guideline version is immutable; create a new version instead"

_changed_sqlite = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in GUARDED)
_changed_pg = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in GUARDED)
# Allowed status moves out of a non-draft state: none, or published -> retired.
_bad_status_sqlite = (
    "(NEW.status IS NOT OLD.status AND NOT (OLD.status = 'published' AND NEW.status = 'retired'))"
)
_bad_status_pg = (
    "(NEW.status IS DISTINCT FROM OLD.status AND NOT (OLD.status = 'published' AND NEW.status = 'retired'))"
)

SQLITE_FORWARD = [
    f"""
    CREATE TRIGGER guidelines_guidelineversion_immutable
    BEFORE UPDATE ON guidelines_guidelineversion
    FOR EACH ROW WHEN OLD.status <> 'draft' AND ({_changed_sqlite} OR {_bad_status_sqlite})
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;
    """,
]
SQLITE_REVERSE = ["DROP TRIGGER IF EXISTS guidelines_guidelineversion_immutable;"]

POSTGRES_FORWARD = [
    f"""
    CREATE OR REPLACE FUNCTION guidelines_guidelineversion_immutable() RETURNS trigger AS $$
    BEGIN
        IF OLD.status <> 'draft' AND ({_changed_pg} OR {_bad_status_pg}) THEN
            RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    END;
    $$ LANGUAGE plpgsql;
    """,
    """
    CREATE TRIGGER guidelines_guidelineversion_immutable
    BEFORE UPDATE ON guidelines_guidelineversion
    FOR EACH ROW EXECUTE FUNCTION guidelines_guidelineversion_immutable();
    """,
]
POSTGRES_REVERSE = [
    "DROP TRIGGER IF EXISTS guidelines_guidelineversion_immutable ON guidelines_guidelineversion;",
    "DROP FUNCTION IF EXISTS guidelines_guidelineversion_immutable();",
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
    dependencies = [("guidelines", "0001_initial")]
    operations = [migrations.RunPython(forward, reverse)]
