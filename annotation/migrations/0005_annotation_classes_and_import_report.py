"""Per-instance classes, upload format and import report on Annotation; trigger re-made.

SQLite rebuilds a table to add a column with a default, which drops its triggers, so the
immutability trigger of ``0003`` is recreated here (on both vendors) and now guards the
new columns too.
"""

from django.db import migrations, models

OLD_GUARDED = [
    "assignment_id", "guideline_version_id", "revision", "mask", "sha256", "height", "width",
    "dtype", "instance_count", "source", "submitted_at", "created_by_id", "idempotency_key",
]
NEW_GUARDED = [*OLD_GUARDED, "instance_classes", "upload_format", "import_report"]
MESSAGE = "annotation revisions are immutable once submitted; submit a new revision instead"


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
        # CREATE OR REPLACE keeps the existing trigger bound to the new function body.
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


def forward(apps, schema_editor):
    for sql in _statements(schema_editor.connection.vendor, NEW_GUARDED):
        schema_editor.execute(sql)


def reverse(apps, schema_editor):
    for sql in _statements(schema_editor.connection.vendor, OLD_GUARDED):
        schema_editor.execute(sql)


class Migration(migrations.Migration):

    dependencies = [
        ("annotation", "0004_annotation_guideline_restrict"),
    ]

    operations = [
        migrations.AddField(
            model_name="annotation",
            name="import_report",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="annotation",
            name="instance_classes",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="annotation",
            name="upload_format",
            field=models.CharField(blank=True, default="", max_length=20),
        ),
        migrations.RunPython(forward, reverse),
    ]
