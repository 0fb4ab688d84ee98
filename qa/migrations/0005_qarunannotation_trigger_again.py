"""The immutability trigger of ``qa_qarunannotation``, made again.

Migration ``0004`` added two columns with a default; SQLite rebuilds a table to do that,
which drops its triggers, so on SQLite the rows of a QA run's annotations could be
updated in bulk since then. This makes the trigger again (PostgreSQL kept it: dropped
and made again, the same). Every migration that adds a column to a table in
``0002_immutable_triggers.TABLES`` must end with :func:`remake_triggers` of that table
(``tests/qa_service/test_immutability_triggers.py`` checks every table after all
migrations).
"""

import importlib

from django.db import migrations

_triggers = importlib.import_module("qa.migrations.0002_immutable_triggers")


def remake_triggers(*tables: str):
    """A migration step that drops (if present) and makes the immutability trigger of
    each table."""
    def step(apps, schema_editor):
        vendor = schema_editor.connection.vendor
        for table in tables:
            if vendor == "sqlite":
                make, drop = _triggers._sqlite(table)
            elif vendor == "postgresql":
                make, drop = _triggers._postgres(table)
            else:
                raise RuntimeError(f"no immutability trigger written for database vendor {vendor!r}")
            for sql in [*drop, *make]:
                schema_editor.execute(sql)
    return step


class Migration(migrations.Migration):

    dependencies = [("qa", "0004_annotation_moved_back")]

    operations = [
        migrations.RunPython(remake_triggers("qa_qarunannotation"), migrations.RunPython.noop),
    ]
