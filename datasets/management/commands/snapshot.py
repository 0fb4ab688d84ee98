"""``python manage.py snapshot --project SLUG --name NAME --user USER [options]``.

Freezes the project's approved masks into the next version of a dataset snapshot and
prints its id, version, content hash, split counts and leak check (see docs/datasets.md).
"""

from __future__ import annotations

import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from annotation.models import Project
from config.errors import DomainError
from datasets.enums import GroupBy, StratifyBy
from datasets.services import SnapshotSpec, snapshot_create


def _filters(values: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for v in values:
        key, sep, value = v.partition("=")
        if not sep or not key:
            raise CommandError(f"--filter {v!r}: use FIELD=VALUE (e.g. modality=fluorescence)")
        out.setdefault(key, []).append(value)
    return out


def _fractions(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError as exc:
        raise CommandError(f"--fractions {text!r}: give three numbers, e.g. 0.8,0.1,0.1") from exc
    if len(parts) != 3:
        raise CommandError(f"--fractions {text!r}: give three numbers (train,val,test)")
    return parts  # type: ignore[return-value]


class Command(BaseCommand):
    help = "Snapshot a project's approved masks as a versioned, split, content-hashed dataset."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument("--name", required=True, help="Dataset name (letters, digits, - and _).")
        parser.add_argument("--user", required=True, help="Acting user (ML engineer or manager).")
        parser.add_argument("--policy-version", type=int, help="Approved under this gating policy version.")
        parser.add_argument("--no-gold", action="store_true", help="Leave gold images out.")
        parser.add_argument("--filter", action="append", default=[], metavar="FIELD=VALUE",
                            help="Image metadata filter (modality, stain, batch, plate, well, site); repeat.")
        parser.add_argument("--group-by", default=GroupBy.PLATE.value, choices=[g.value for g in GroupBy])
        parser.add_argument("--stratify-by", choices=[s.value for s in StratifyBy])
        parser.add_argument("--fractions", default="0.8,0.1,0.1", help="train,val,test (default 0.8,0.1,0.1).")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--description", default="")
        parser.add_argument("--licence", default="")
        parser.add_argument("--citation", default="")
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args, **o):
        project = Project.objects.filter(slug=o["project"]).first()
        if project is None:
            raise CommandError(f"no project with slug {o['project']!r}")
        user = get_user_model().objects.filter(username=o["user"]).first()
        if user is None:
            raise CommandError(f"no user {o['user']!r}")
        spec = SnapshotSpec(
            name=o["name"], description=o["description"], policy_version=o["policy_version"],
            include_gold=not o["no_gold"], filters=_filters(o["filter"]), group_by=o["group_by"],
            stratify_by=o["stratify_by"], fractions=_fractions(o["fractions"]), seed=o["seed"],
            licence=o["licence"], citation=o["citation"],
        )
        try:
            result = snapshot_create(actor=user, project=project, spec=spec)
        except DomainError as exc:
            where = f" ({exc.field})" if exc.field else ""
            raise CommandError(f"{exc.message}{where}") from exc
        s = result.snapshot
        info = {"id": s.pk, "name": s.name, "version": s.version, "created": result.created,
                "content_hash": s.content_hash, "items": s.n_items, "cells": s.n_cells,
                "splits": s.split_counts, "leak_check": s.leak_check, "warnings": s.warnings}
        if o["json"]:
            self.stdout.write(json.dumps(info))
            return
        verb = "created" if result.created else "unchanged since"
        self.stdout.write(f"{verb} snapshot {s.name} v{s.version} (id {s.pk})")
        self.stdout.write(f"  content hash {s.content_hash}")
        self.stdout.write(f"  {s.n_items} images, {s.n_cells} cells; splits " +
                          ", ".join(f"{k} {v}" for k, v in s.split_counts.items()))
        leak = "passed" if s.leak_check.get("ok") else f"FAILED: {s.leak_check.get('leaked_groups')}"
        self.stdout.write(f"  leak check ({s.split_options.get('group_by')}): {leak}")
        for w in s.warnings:
            self.stdout.write(f"  warning: {w}")
