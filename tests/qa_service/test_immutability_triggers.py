"""After all migrations, every table of written-once records has its immutability trigger.

SQLite drops a table's triggers when a migration rebuilds the table (adding a column with
a default does), so a later migration can silently lose one; this checks the database as
migrated, on SQLite and on PostgreSQL, and that the trigger bites.
"""

from __future__ import annotations

import importlib

import pytest
from django.db import IntegrityError, connection, transaction

from qa.models import QaRunAnnotation

QA_TABLES = importlib.import_module("qa.migrations.0002_immutable_triggers").TABLES
OTHER_TABLES = ["qa_qamodelreference", "annotation_annotation", "guidelines_guidelineversion",
                "datasets_datasetsnapshot", "datasets_snapshotitem"]


def _triggers() -> set[tuple[str, str]]:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'")
        else:
            cursor.execute("SELECT tgname, tgrelid::regclass::text FROM pg_trigger "
                           "WHERE NOT tgisinternal")
        return {(name, table) for name, table in cursor.fetchall()}


@pytest.mark.django_db
@pytest.mark.parametrize("table", [*QA_TABLES, *OTHER_TABLES])
def test_every_written_once_table_has_its_immutability_trigger(table):
    assert (f"{table}_immutable", table) in _triggers()


def test_a_qa_run_annotation_row_cannot_be_updated_in_bulk(submitted):
    row = QaRunAnnotation.objects.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        QaRunAnnotation.objects.filter(pk=row.pk).update(quality=0.123)
    row.refresh_from_db()
    assert row.quality != 0.123
