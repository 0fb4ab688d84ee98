"""Guideline rule warnings stored with each annotation; the immutability trigger re-made.

SQLite rebuilds the table to add a column with a default, which drops its triggers, so
the immutability trigger (migrations ``0003``/``0005``) is recreated, now guarding every
column of the row but ``id`` (the new one included). On PostgreSQL the trigger function
is replaced in place. Going back, the function stops naming the column before it is
removed, and SQLite gets its trigger back after the rebuild.
"""

from django.db import migrations, models

MESSAGE = "annotation revisions are immutable once submitted; submit a new revision instead"
NEW_COLUMN = "rule_warnings"


def _statements(vendor: str, guarded: list[str]) -> list[str]:
    if vendor == "sqlite":
        condition = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in guarded)
        return [
            "DROP TRIGGER IF EXISTS annotation_annotation_immutable;",
            f"""
            CREATE TRIGGER annotation_annotation_immutable
            BEFORE UPDATE ON annotation_annotation
            FOR EACH ROW WHEN OLD.submitted_at IS NOT NULL AND ({condition})
            BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;
            """,
        ]
    if vendor == "postgresql":
        condition = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in guarded)
        return [
            f"""
            CREATE OR REPLACE FUNCTION annotation_annotation_immutable() RETURNS trigger AS $$
            BEGIN
                IF OLD.submitted_at IS NOT NULL AND ({condition}) THEN
                    RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
                END IF;
                RETURN NEW;
            END;
            $$ LANGUAGE plpgsql;
            """,
        ]
    raise RuntimeError(f"no immutability trigger written for database vendor {vendor!r}")


def _recreate(apps, schema_editor, *, exclude=()):
    model = apps.get_model("annotation", "Annotation")
    guarded = [
        f.column for f in model._meta.concrete_fields
        if not f.primary_key and f.column not in exclude
    ]
    for sql in _statements(schema_editor.connection.vendor, guarded):
        schema_editor.execute(sql)


def guard_all(apps, schema_editor):
    _recreate(apps, schema_editor)


def guard_without_new(apps, schema_editor):
    _recreate(apps, schema_editor, exclude=(NEW_COLUMN,))


def noop(apps, schema_editor):
    pass


class Migration(migrations.Migration):

    dependencies = [
        ("annotation", "0007_qa_project_settings_and_assignment_comment"),
    ]

    operations = [
        # Reversed last: SQLite's rebuild for RemoveField dropped the trigger.
        migrations.RunPython(noop, guard_without_new),
        migrations.AddField(
            model_name="annotation",
            name="rule_warnings",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.RunPython(guard_all, guard_without_new),
    ]
