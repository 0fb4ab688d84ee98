"""Database-level immutability of QA events.

QA runs, their annotation rows, gate and review decisions, approved masks, gold truths,
reliability history points and audit rows are written once. The models' ``save()``
refuses an update; these triggers make the database refuse any UPDATE too (PostgreSQL
and SQLite), so no admin action, bulk ``update()`` or raw SQL rewrites a decision.
Deleting rows (cascade from an image or project) stays possible.
"""

from django.db import migrations

TABLES = [
    "qa_qarun", "qa_qarunannotation", "qa_gatedecision", "qa_reviewdecision",
    "qa_approvedmask", "qa_goldtruth", "qa_annotatorreliabilitypoint", "qa_auditevent",
]
MESSAGE = "QA decisions and their evidence are immutable; new evidence makes a new row"


def _sqlite(table: str) -> tuple[list[str], list[str]]:
    forward = [
        f"""
        CREATE TRIGGER {table}_immutable BEFORE UPDATE ON {table}
        FOR EACH ROW BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;
        """
    ]
    return forward, [f"DROP TRIGGER IF EXISTS {table}_immutable;"]


def _postgres(table: str) -> tuple[list[str], list[str]]:
    forward = [
        f"""
        CREATE TRIGGER {table}_immutable BEFORE UPDATE ON {table}
        FOR EACH ROW EXECUTE FUNCTION qa_refuse_update();
        """
    ]
    return forward, [f"DROP TRIGGER IF EXISTS {table}_immutable ON {table};"]


POSTGRES_FUNCTION = f"""
CREATE OR REPLACE FUNCTION qa_refuse_update() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
"""


def _statements(vendor: str, index: int) -> list[str]:
    if vendor == "sqlite":
        return [sql for t in TABLES for sql in _sqlite(t)[index]]
    if vendor == "postgresql":
        body = [sql for t in TABLES for sql in _postgres(t)[index]]
        if index == 0:
            return [POSTGRES_FUNCTION, *body]
        return [*body, "DROP FUNCTION IF EXISTS qa_refuse_update();"]
    raise RuntimeError(f"no immutability trigger written for database vendor {vendor!r}")


def forward(apps, schema_editor):
    for sql in _statements(schema_editor.connection.vendor, 0):
        schema_editor.execute(sql)


def reverse(apps, schema_editor):
    for sql in _statements(schema_editor.connection.vendor, 1):
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("qa", "0001_initial")]
    operations = [migrations.RunPython(forward, reverse)]
