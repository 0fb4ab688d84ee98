"""Masks in every format over the API: upload (auto-detected), download (?format=), refusals."""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np
import pytest
from skimage.draw import disk

from annotation.masks import (
    FORMAT_INFO,
    WRITE_FORMATS,
    encode_brush_rle,
    read_mask,
    write_mask,
)
from annotation.models import Annotation, Assignment
from annotation.services.mask_export import annotation_labels
from tests.api.uploads import stored_files, upload, url
from tests.factories import AssignmentFactory, ImageFactory

pytestmark = pytest.mark.django_db

H, W = 64, 96
CLASSES = ["nucleus", "mitotic"]
RASTER_FORMATS = ("png", "tiff", "ome-tiff", "instances", "cellpose")
POLYGON_FORMATS = ("imagej", "coco", "geojson")


def synthetic_cells() -> tuple[np.ndarray, dict[int, str]]:
    """Two touching disks, an annulus (a hole), a half disk and a square cut by the border."""
    labels = np.zeros((H, W), np.uint16)
    labels[disk((16, 16), 9, shape=(H, W))] = 1
    labels[disk((16, 34), 9, shape=(H, W))] = 2  # touches (and trims) cell 1
    ring = np.zeros((H, W), bool)
    ring[disk((44, 60), 12, shape=(H, W))] = True
    ring[disk((44, 60), 4, shape=(H, W))] = False
    labels[ring] = 3
    labels[disk((58, 8), 10, shape=(H, W))] = 4  # cut by the left and bottom borders
    labels[20:40, 84:96] = 5  # on the right border
    return labels, {1: "nucleus", 2: "mitotic", 3: "nucleus", 4: "mitotic", 5: "nucleus"}


def best_ious(reference: np.ndarray, candidate: np.ndarray) -> dict[int, float]:
    """For every reference cell, its best IoU with any candidate cell."""
    out = {}
    for rid in np.unique(reference[reference > 0]):
        ref = reference == rid
        best = 0.0
        for cid in np.unique(candidate[ref]):
            if cid == 0:
                continue
            cand = candidate == cid
            best = max(best, (ref & cand).sum() / (ref | cand).sum())
        out[int(rid)] = best
    return out


def class_of_best_match(reference, candidate, cand_classes: dict) -> dict[int, str | None]:
    out = {}
    for rid in np.unique(reference[reference > 0]):
        ids, counts = np.unique(candidate[reference == rid], return_counts=True)
        keep = ids > 0
        cid = int(ids[keep][np.argmax(counts[keep])])
        out[int(rid)] = cand_classes.get(str(cid), cand_classes.get(cid))
    return out


@pytest.fixture
def fmt(world):
    world.project.cell_classes = CLASSES
    world.project.save(update_fields=["cell_classes"])
    image = ImageFactory(project=world.project, height=H, width=W, original_name="cells.png")
    for name in ("annotator", "annotator2"):
        world.assignments[f"{name}-cells"] = AssignmentFactory(
            image=image, annotator=world.users[name]
        )
    world.images.append(image)
    return world


def post_mask(client, world, data: bytes, *, user="annotator", name="upload.bin", **fields):
    client.force_authenticate(world.users[user])
    body = {"assignment": world.assignments[f"{user}-cells"].pk, "mask": upload(name, data)}
    for key, value in fields.items():
        body[key] = json.dumps(value) if isinstance(value, dict) else value
    return client.post(url("world", "annotations"), body, format="multipart")


def nothing_stored(world, media_root, before):
    assert Annotation.objects.count() == 0
    assert stored_files(media_root) == before
    assert Assignment.objects.get(pk=world.assignments["annotator-cells"].pk).status == "pending"
    return True


# ------------------------------------------------------------------------------ upload


@pytest.mark.parametrize("format", WRITE_FORMATS)
def test_upload_in_each_format_is_detected_and_stored(fmt, api_client, format):
    labels, classes = synthetic_cells()
    data = write_mask(labels, format=format, classes=classes, image_name="cells.png")
    response = post_mask(api_client, fmt, data)  # the name says nothing about the format
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["upload_format"] == format
    assert body["source"] == ("manual" if format in ("png", "tiff", "ome-tiff") else "imported")
    assert body["instance_count"] == 5
    stored = annotation_labels(Annotation.objects.get(pk=body["id"]))
    assert stored.shape == (H, W)
    if format in RASTER_FORMATS:
        np.testing.assert_array_equal(stored, labels)
        assert body["instance_classes"] == {}
    else:
        ious = best_ious(labels, stored)
        assert min(ious.values()) >= 0.98, ious
        assert class_of_best_match(labels, stored, body["instance_classes"]) == classes


def test_upload_of_label_studio_polygons_and_brush(fmt, api_client):
    brush = np.zeros((H, W), bool)
    brush[10:30, 50:70] = True  # a 20 x 20 square painted with the brush
    polygon = [[10 / W * 100, 40 / H * 100], [40 / W * 100, 40 / H * 100],
               [40 / W * 100, 60 / H * 100], [10 / W * 100, 60 / H * 100]]
    size = {"original_width": W, "original_height": H}
    task = {
        "id": 7,
        "data": {"image": "/data/upload/3/cells.png"},
        "annotations": [{"id": 1, "result": [
            {"type": "polygonlabels", **size,
             "value": {"points": polygon, "polygonlabels": ["Nucleus"]}},
            {"type": "brushlabels", **size,
             "value": {"format": "rle", "rle": encode_brush_rle(brush),
                       "brushlabels": ["mitotic"]}},
        ]}],
    }
    response = post_mask(api_client, fmt, json.dumps([task]).encode())
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["upload_format"], body["source"], body["instance_count"]) == ("labelstudio", "imported", 2)
    stored = annotation_labels(Annotation.objects.get(pk=body["id"]))
    by_class = {name: int((stored == int(i)).sum()) for i, name in body["instance_classes"].items()}
    # "Nucleus" is spelled as the project's "nucleus"; corners 10..40 x 40..60 cover 30 x 20 px.
    assert by_class == {"nucleus": 600, "mitotic": 400}


def test_overlapping_polygons_are_resolved_and_reported(fmt, api_client):
    def square(x0, y0, side, cls):
        ring = [[x0, y0], [x0 + side, y0], [x0 + side, y0 + side], [x0, y0 + side], [x0, y0]]
        return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {"objectType": "annotation", "classification": {"name": cls}}}

    doc = {"type": "FeatureCollection",
           "features": [square(10, 10, 20, "nucleus"), square(20, 20, 20, "nucleus")]}
    response = post_mask(api_client, fmt, json.dumps(doc).encode())
    assert response.status_code == 201, response.json()
    report = response.json()["import_report"]
    assert any("overlap" in w for w in report["warnings"]), report
    annotation = Annotation.objects.get()
    assert annotation.import_report == report
    stored = annotation_labels(annotation)
    assert stored.max() == 2
    assert int((stored > 0).sum()) == 20 * 20 * 2 - 10 * 10


def test_multi_image_coco_picks_the_entry_named_like_the_image(fmt, api_client):
    labels, classes = synthetic_cells()
    other = np.zeros((H, W), np.uint16)
    other[5:15, 5:15] = 1
    from annotation.masks import CocoImage, write_coco

    data = write_coco([CocoImage("other.png", other, {1: "nucleus"}),
                       CocoImage("cells.png", labels, classes)])
    response = post_mask(api_client, fmt, data)
    assert response.status_code == 201, response.json()
    assert response.json()["instance_count"] == 5
    # Naming the other entry imports that one instead (as a new revision).
    response = post_mask(api_client, fmt, data, image_name="other.png", base_revision=1)
    assert response.status_code == 201, response.json()
    assert (response.json()["revision"], response.json()["instance_count"]) == (2, 1)


def test_named_format_that_the_content_contradicts_is_refused(fmt, api_client, media_root):
    before = stored_files(media_root)
    labels, _ = synthetic_cells()
    response = post_mask(api_client, fmt, write_mask(labels, format="png"), mask_format="coco")
    assert response.status_code == 400
    assert "content is png, not coco" in " ".join(response.json()["mask"])
    assert nothing_stored(fmt, media_root, before)


# ------------------------------------------------------------------------------ classes


def test_unknown_classes_are_refused_listing_them_and_nothing_is_stored(fmt, api_client, media_root):
    before = stored_files(media_root)
    labels, _ = synthetic_cells()
    classes = {1: "nucleus", 2: "apoptotic", 3: "debris", 4: "Mitotic", 5: "nucleus"}
    response = post_mask(api_client, fmt, write_mask(labels, format="geojson", classes=classes))
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "unknown_classes"
    assert body["unknown_classes"] == ["apoptotic", "debris"]
    assert body["project_classes"] == CLASSES
    assert "['apoptotic', 'debris']" in body["mask"][0]
    assert nothing_stored(fmt, media_root, before)


def test_class_map_renames_file_classes_to_project_classes(fmt, api_client):
    labels, _ = synthetic_cells()
    classes = {1: "cell", 2: "cell", 3: "dividing", 4: "cell", 5: "NUCLEUS"}
    data = write_mask(labels, format="coco", classes=classes)
    response = post_mask(api_client, fmt, data, class_map={"cell": "nucleus", "dividing": "mitotic"})
    assert response.status_code == 201, response.json()
    stored = annotation_labels(Annotation.objects.get())
    assert class_of_best_match(labels, stored, response.json()["instance_classes"]) == {
        1: "nucleus", 2: "nucleus", 3: "mitotic", 4: "nucleus", 5: "nucleus",
    }


def test_class_map_to_a_class_the_project_lacks_is_refused(fmt, api_client, media_root):
    before = stored_files(media_root)
    labels, classes = synthetic_cells()
    data = write_mask(labels, format="coco", classes=classes)
    response = post_mask(api_client, fmt, data, class_map={"nucleus": "blob"})
    assert response.status_code == 400
    assert "['blob']" in response.json()["class_map"][0]
    assert nothing_stored(fmt, media_root, before)


def test_project_without_cell_classes_drops_file_classes_with_a_warning(fmt, api_client):
    fmt.project.cell_classes = []
    fmt.project.save(update_fields=["cell_classes"])
    labels, classes = synthetic_cells()
    response = post_mask(api_client, fmt, write_mask(labels, format="coco", classes=classes))
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["instance_classes"] == {}
    assert any("defines no cell classes" in w for w in body["import_report"]["warnings"])


# ----------------------------------------------------------------------------- hostile


class _RunsCommand:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def test_seg_npy_whose_pickle_runs_a_command_is_refused(fmt, api_client, media_root, tmp_path):
    before = stored_files(media_root)
    canary = tmp_path / "canary"
    buf = io.BytesIO()
    labels, _ = synthetic_cells()
    np.save(buf, {"masks": labels, "outlines": _RunsCommand(os.system, f"touch {canary}")},
            allow_pickle=True)
    response = post_mask(api_client, fmt, buf.getvalue(), name="cells_seg.npy")
    assert response.status_code == 400
    assert "system" in " ".join(response.json()["mask"])
    assert not canary.exists()
    assert nothing_stored(fmt, media_root, before)


def test_zip_slip_roi_archive_is_refused(fmt, api_client, media_root):
    before = stored_files(media_root)
    labels, _ = synthetic_cells()
    with zipfile.ZipFile(io.BytesIO(write_mask(labels, format="imagej"))) as zf:
        members = [(info.filename, zf.read(info)) for info in zf.infolist()]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, (name, content) in enumerate(members):
            zf.writestr(f"../../{name}" if n == 0 else name, content)
    response = post_mask(api_client, fmt, buf.getvalue(), name="rois.zip")
    assert response.status_code == 400
    assert "'..'" in " ".join(response.json()["mask"])
    assert nothing_stored(fmt, media_root, before)


def test_coco_polygon_with_nan_is_refused(fmt, api_client, media_root):
    before = stored_files(media_root)
    doc = {"images": [{"id": 1, "file_name": "cells.png", "width": W, "height": H}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
                            "segmentation": [[1.0, 1.0, float("nan"), 2.0, 9.0, 9.0]]}],
           "categories": [{"id": 1, "name": "nucleus"}]}
    response = post_mask(api_client, fmt, json.dumps(doc).encode())  # json writes NaN
    assert response.status_code == 400
    assert "NaN" in " ".join(response.json()["mask"]) or "finite" in " ".join(response.json()["mask"])
    assert nothing_stored(fmt, media_root, before)


# ---------------------------------------------------------------------------- download


@pytest.fixture
def submitted(fmt, api_client):
    """The annotator's exact synthetic mask (PNG), then classes attached via a GeoJSON edit."""
    labels, classes = synthetic_cells()
    first = post_mask(api_client, fmt, write_mask(labels, format="png"))
    assert first.status_code == 201
    return fmt, first.json()["id"], labels


@pytest.mark.parametrize("format", WRITE_FORMATS)
def test_download_in_each_format_round_trips(submitted, api_client, format):
    world, annotation_id, labels = submitted
    api_client.force_authenticate(world.users["qa_lead"])
    response = api_client.get(url("world", "annotations", annotation_id, "mask") + f"?format={format}")
    assert response.status_code == 200
    assert response["Content-Type"] == FORMAT_INFO[format].media_type
    expected_name = f"image{world.images[-1].pk}_annotation{annotation_id}_r1{FORMAT_INFO[format].suffix}"
    assert f'filename="{expected_name}"' in response["Content-Disposition"]
    back = read_mask(response.content, shape=(H, W))
    if format in RASTER_FORMATS:
        np.testing.assert_array_equal(back.labels, labels)
    else:
        ious = best_ious(labels, back.labels)
        assert min(ious.values()) >= 0.98, ious


def test_classes_round_trip_through_polygon_downloads(fmt, api_client):
    labels, classes = synthetic_cells()
    created = post_mask(api_client, fmt, write_mask(labels, format="geojson", classes=classes)).json()
    stored = annotation_labels(Annotation.objects.get(pk=created["id"]))
    for format in POLYGON_FORMATS:
        response = api_client.get(url("world", "annotations", created["id"], "mask") + f"?format={format}")
        back = read_mask(response.content, shape=(H, W))
        assert class_of_best_match(stored, back.labels, dict(back.classes)) == {
            int(i): c for i, c in created["instance_classes"].items()
        }, format
        assert class_of_best_match(labels, back.labels, dict(back.classes)) == classes


def test_coco_download_gives_unclassified_cells_the_default_class(submitted, api_client):
    world, annotation_id, _ = submitted
    response = api_client.get(url("world", "annotations", annotation_id, "mask") + "?format=coco")
    doc = json.loads(response.content)
    assert [c["name"] for c in doc["categories"]] == ["nucleus"]
    assert len(doc["annotations"]) == 5
    assert doc["images"][0]["file_name"] == "cells.png"


def test_download_without_format_returns_the_stored_png(submitted, api_client):
    world, annotation_id, labels = submitted
    response = api_client.get(url("world", "annotations", annotation_id, "mask"))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    np.testing.assert_array_equal(read_mask(b"".join(response.streaming_content)).labels, labels)


def test_unknown_download_format_is_a_400_listing_the_valid_ones(submitted, api_client):
    world, annotation_id, _ = submitted
    response = api_client.get(url("world", "annotations", annotation_id, "mask") + "?format=jpeg")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    message = response.json()["format"][0]
    assert '"jpeg" is not a mask format' in message
    assert ", ".join(WRITE_FORMATS) in message


def test_unknown_query_parameter_on_download_is_refused(submitted, api_client):
    world, annotation_id, _ = submitted
    response = api_client.get(url("world", "annotations", annotation_id, "mask") + "?fmt=png")
    assert response.status_code == 400
    assert response.json() == {"fmt": ["Unknown field."]}


@pytest.mark.parametrize("user", ["annotator2", "non_member"])
@pytest.mark.parametrize("format", ["", "?format=coco", "?format=png", "?format=jpeg"])
def test_refused_download_leaks_nothing(submitted, api_client, user, format):
    world, annotation_id, _ = submitted
    api_client.force_authenticate(world.users[user])
    response = api_client.get(url("world", "annotations", annotation_id, "mask") + format)
    # annotator2 has not submitted for this image yet (blind labeling); the non-member is
    # not in the project. Both are told the annotation does not exist, whatever the format.
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": f"{'annotation ' + str(annotation_id) if user == 'annotator2' else 'project ' + repr('world')} not found", "code": "not_found"}


def test_blind_labeling_holds_after_the_other_annotator_submitted(submitted, api_client):
    """A submitted annotator who could download a peer's mask could resubmit it as theirs."""
    world, annotation_id, labels = submitted
    assert post_mask(api_client, world, write_mask(labels, format="png"), user="annotator2").status_code == 201
    response = api_client.get(url("world", "annotations", annotation_id, "mask") + "?format=cellpose")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    api_client.force_authenticate(world.users["qa_lead"])
    response = api_client.get(url("world", "annotations", annotation_id, "mask") + "?format=cellpose")
    assert response.status_code == 200
    np.testing.assert_array_equal(read_mask(response.content).labels, labels)


def test_explicit_source_and_named_format_are_kept(fmt, api_client):
    labels, classes = synthetic_cells()
    data = write_mask(labels, format="coco", classes=classes)
    response = post_mask(api_client, fmt, data, mask_format="coco", source="model_assisted")
    assert response.status_code == 201, response.json()
    assert (response.json()["source"], response.json()["upload_format"]) == ("model_assisted", "coco")


def test_import_retried_with_the_same_idempotency_key_returns_the_first(fmt, api_client):
    labels, classes = synthetic_cells()
    data = write_mask(labels, format="geojson", classes=classes)
    api_client.force_authenticate(fmt.users["annotator"])
    bodies = []
    for _ in range(2):
        bodies.append(api_client.post(
            url("world", "annotations"),
            {"assignment": fmt.assignments["annotator-cells"].pk, "mask": upload("m", data)},
            format="multipart", headers={"Idempotency-Key": "import-1"},
        ))
    assert [b.status_code for b in bodies] == [201, 200]
    assert bodies[0].json() == bodies[1].json()
    assert Annotation.objects.count() == 1


def test_render_refuses_unknown_formats_and_ids_png_cannot_hold():
    from annotation.services.mask_export import mask_render
    from config.errors import InvalidInput

    labels = np.arange(300 * 300, dtype=np.uint32).reshape(300, 300)  # ids up to 89,999
    with pytest.raises(
        InvalidInput,
        match="expected one of png, tiff, ome-tiff, instances, cellpose, imagej, coco, geojson",
    ):
        mask_render(labels, format="labelstudio", stem="x")
    with pytest.raises(InvalidInput, match="cannot write this mask as png"):
        mask_render(labels, format="png", stem="x")
    rendered = mask_render(labels, format="tiff", stem="big")
    assert (rendered.filename, rendered.content_type) == ("big.tif", "image/tiff")
    np.testing.assert_array_equal(read_mask(rendered.content).labels, labels)
