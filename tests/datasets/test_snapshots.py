"""Snapshots of approved masks: selection, splits, provenance, reproducible hash, immutability."""

import pytest

from config.errors import InvalidInput, NotFound, PermissionDenied
from datasets.formats.manifest import content_hash
from datasets.models import DatasetSnapshot, ImmutableError, SnapshotItem
from datasets.services import SnapshotSpec, snapshot_create, snapshot_update
from datasets.services.snapshots import snapshot_header
from qa.models import ApprovedMask
from qa.services.review import review_act
from tests.datasets.conftest import cell_labels


def _create(world, name="nuclei", role="ml_engineer", **kw):
    return snapshot_create(actor=world.users[role], project=world.project, spec=SnapshotSpec(name=name, **kw))


def test_snapshot_freezes_every_approved_mask_with_provenance(dsworld):
    result = _create(dsworld, fractions=(0.5, 0.25, 0.25), seed=1)
    snap = result.snapshot
    assert result.created and snap.version == 1
    assert snap.n_items == 12 == SnapshotItem.objects.filter(snapshot=snap).count()
    assert snap.n_cells == sum(int(lab.max()) for lab in dsworld.labels.values())
    assert snap.leak_check["ok"] is True and snap.leak_check["leaked_groups"] == []
    assert snap.split_counts == {"train": 6, "val": 2, "test": 4}  # 6 plates of 2 images: 3/1/2 plates
    item = SnapshotItem.objects.filter(snapshot=snap, image=dsworld.images[0]).get()
    am = ApprovedMask.objects.get(pk=item.approved_mask_id)
    row = item.row
    assert row["mask"]["sha256"] == am.sha256 == item.mask_sha256
    assert row["image"]["sha256"] == dsworld.images[0].sha256
    assert row["image"]["pixel_size_um"] == 0.65
    assert row["group"] == "plate:P0"
    prov = row["provenance"]
    assert sorted(a["annotator"] for a in prov["annotations"]) == ["cells-annotator", "cells-annotator2"]
    assert {a["guideline_version"] for a in prov["annotations"]} == {1}
    assert prov["decision"]["kind"] == "gate" and prov["decision"]["outcome"] == "approve"
    assert prov["policy_version"] == 1
    assert prov["qa_run"]["algorithm_version"] and prov["qa_run"]["mean_agreement"] == 1.0
    # Both annotators classed their cell 1; the consensus numbers cells in raster order.
    consensus_id = int(dsworld.labels[dsworld.images[0].pk][cell_labels(0) == 1][0])
    assert row["cell_classes"] == {str(consensus_id): "mitotic"}
    cells = row["cells"]
    assert set(cells) == {str(i) for i in range(1, am.n_cells + 1)}
    assert cells["1"]["support"] == 2 and cells["1"]["gate"] == "keep"


def test_same_data_gives_the_same_hash_and_same_name_is_not_duplicated(dsworld):
    a = _create(dsworld, name="first").snapshot
    b = _create(dsworld, name="second").snapshot
    assert a.pk != b.pk and a.content_hash == b.content_hash
    again = _create(dsworld, name="first")
    assert again.created is False and again.snapshot.pk == a.pk
    rows = list(SnapshotItem.objects.filter(snapshot=a).order_by("-id").values_list("row", flat=True))
    assert content_hash(snapshot_header(a), rows) == a.content_hash  # any row order


def test_other_seed_or_grouping_gives_another_hash(dsworld):
    base = _create(dsworld, name="s0").snapshot
    assert _create(dsworld, name="s1", seed=7).snapshot.content_hash != base.content_hash
    by_batch = _create(dsworld, name="s2", group_by="batch").snapshot
    assert by_batch.split_options["group_by"] == "batch"
    groups = set(SnapshotItem.objects.filter(snapshot=by_batch).values_list("group", flat=True))
    assert groups == {"batch:B0", "batch:B1", "batch:B2"}


def test_new_approval_makes_a_new_version_that_supersedes(dsworld):
    v1 = _create(dsworld).snapshot
    image = dsworld.images[3]
    ann = image.assignments.get(annotator=dsworld.users["annotator2"]).annotations.get()
    review_act(actor=dsworld.users["qa_lead"], image=image, action="accept_annotation", annotation=ann)
    v2 = _create(dsworld).snapshot
    assert v2.version == 2 and v2.supersedes_id == v1.pk
    assert v2.content_hash != v1.content_hash
    row = SnapshotItem.objects.get(snapshot=v2, image=image).row
    assert row["provenance"]["decision"]["kind"] == "review"
    assert row["provenance"]["decision"]["action"] == "accept_annotation"


def test_filters_gold_and_policy_version(dsworld):
    fluo = _create(dsworld, name="fluo", filters={"modality": ["fluorescence"]}).snapshot
    assert fluo.n_items == 6
    assert set(SnapshotItem.objects.filter(snapshot=fluo).values_list("row__image__modality", flat=True)) == {"fluorescence"}
    v1 = _create(dsworld, name="v1", policy_version=1).snapshot
    assert v1.n_items == 12 and v1.selection["policy_version"] == 1
    with pytest.raises(InvalidInput) as err:
        _create(dsworld, name="none", filters={"plate": ["nope"]})
    assert err.value.field == "filters"
    with pytest.raises(InvalidInput, match="not published") as err:
        _create(dsworld, name="v9", policy_version=9)
    assert err.value.field == "policy_version"


def test_stratified_snapshot_keeps_modalities_in_each_split(dsworld):
    snap = _create(dsworld, name="strat", stratify_by="modality", group_by="image",
                   fractions=(0.5, 0.25, 0.25)).snapshot
    assert snap.split_options["method"] == "StratifiedGroupKFold"
    for split in ("train", "val", "test"):
        kinds = set(SnapshotItem.objects.filter(snapshot=snap, split=split)
                    .values_list("row__image__modality", flat=True))
        assert kinds == {"fluorescence", "brightfield"}, split


@pytest.mark.parametrize("kw, field", [
    ({"name": "bad name!"}, "name"),
    ({"group_by": "colour"}, "group_by"),
    ({"stratify_by": "plate"}, "stratify_by"),
    ({"fractions": (0.9, 0.2, 0.1)}, "fractions"),
    ({"filters": {"colour": ["red"]}}, "filters"),
])
def test_bad_specs_are_refused_naming_the_field(dsworld, kw, field):
    name = kw.pop("name", "x")
    with pytest.raises(InvalidInput) as err:
        _create(dsworld, name=name, **kw)
    assert err.value.field == field
    assert DatasetSnapshot.objects.count() == 0


def test_roles_create_read_and_refuse(dsworld):
    assert _create(dsworld, name="by-manager", role="manager").created
    with pytest.raises(PermissionDenied):
        _create(dsworld, name="by-lead", role="qa_lead")
    with pytest.raises(PermissionDenied):
        _create(dsworld, name="by-annotator", role="annotator")
    with pytest.raises(NotFound):
        _create(dsworld, name="by-outsider", role="non_member")


def test_snapshot_content_is_immutable_only_licence_and_citation_fill_in(dsworld):
    snap = _create(dsworld).snapshot
    snap.description = "changed"
    with pytest.raises(ImmutableError):
        snap.save()
    item = SnapshotItem.objects.filter(snapshot=snap).first()
    item.split = "test"
    with pytest.raises(ImmutableError):
        item.save()
    snap.refresh_from_db()
    snapshot_update(actor=dsworld.users["manager"], snapshot=snap, licence="CC-BY-4.0", citation="Doe 2026")
    snap.refresh_from_db()
    assert (snap.licence, snap.citation, snap.description) == ("CC-BY-4.0", "Doe 2026", "")
    with pytest.raises(PermissionDenied):
        snapshot_update(actor=dsworld.users["ml_engineer"], snapshot=snap, licence="MIT")


def test_the_database_refuses_to_rewrite_a_snapshot(dsworld):
    from django.db import DatabaseError, transaction

    snap = _create(dsworld).snapshot
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        DatasetSnapshot.objects.filter(pk=snap.pk).update(content_hash="0" * 64)
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        SnapshotItem.objects.filter(snapshot=snap).update(split="test")
    assert DatasetSnapshot.objects.filter(pk=snap.pk).update(licence="CC0-1.0") == 1
    snap.refresh_from_db()
    assert snap.licence == "CC0-1.0" and snap.content_hash != "0" * 64
    assert set(SnapshotItem.objects.filter(snapshot=snap).values_list("split", flat=True)) != {"test"}


def test_approved_masks_are_the_annotators_cells_renumbered(dsworld):
    approved = dsworld.labels[dsworld.images[5].pk]
    drawn = cell_labels(5)
    assert ((approved > 0) == (drawn > 0)).all()
    assert len(set(zip(approved.ravel().tolist(), drawn.ravel().tolist(), strict=True))) == int(drawn.max()) + 1
