"""The submit endpoint on the files of issue 11: inverted binary masks (invert), images
sent as masks, per-instance masks, two-colour masks, QuPath nuclei (geometry), COCO
crowd RLE (crowd) and OME-TIFF with its pixel size, in and out.

Files: ``tests/data/stardist`` and ``tests/data/constructed`` (see SOURCES.md).
"""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage
from skimage.measure import label as sk_label

from annotation.masks import PixelSize, read_mask, relabel_sequential, tiff_facts, write_mask
from annotation.models import Annotation, Assignment
from annotation.services.mask_export import annotation_labels
from tests.api.uploads import stored_files, upload, url
from tests.conftest import TEST_DATA
from tests.factories import AssignmentFactory, ImageFactory

pytestmark = pytest.mark.django_db

STARDIST = TEST_DATA / "stardist"
CONSTRUCTED = TEST_DATA / "constructed"


@pytest.fixture
def nuclei(world):
    """An image the size of StarDist's img2d (512 x 512), assigned to the annotator."""
    image = ImageFactory(project=world.project, height=512, width=512, original_name="img2d.tif")
    world.assignments["nuclei"] = AssignmentFactory(image=image, annotator=world.users["annotator"])
    return world


def post(client, world, data: bytes, **fields):
    client.force_authenticate(world.users["annotator"])
    body = {"assignment": world.assignments["nuclei"].pk, "mask": upload("upload.bin", data)}
    body.update({k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in fields.items()})
    return client.post(url("world", "annotations"), body, format="multipart")


def mask2d() -> np.ndarray:
    return relabel_sequential(tifffile.imread(STARDIST / "mask2d.tif"))


def nothing_stored(world, media_root, before) -> bool:
    return (
        Annotation.objects.count() == 0
        and stored_files(media_root) == before
        and Assignment.objects.get(pk=world.assignments["nuclei"].pk).status == "pending"
    )


def test_inverted_binary_mask_is_a_400_naming_the_fix_then_invert_true_imports_it(
    nuclei, api_client, media_root
):
    before = stored_files(media_root)
    data = (CONSTRUCTED / "bubil_inverted" / "img2d_mask.png").read_bytes()
    response = post(api_client, nuclei, data)
    assert response.status_code == 400
    message = " ".join(response.json()["mask"])
    assert "touches all four borders: this looks like an inverted mask" in message
    assert "invert=true" in message
    assert nothing_stored(nuclei, media_root, before)
    response = post(api_client, nuclei, data, invert="true")
    assert response.status_code == 201, response.json()
    body = response.json()
    reference = sk_label(tifffile.imread(STARDIST / "mask2d.tif") > 0, connectivity=2)
    assert body["instance_count"] == int(reference.max())
    assert body["upload_format"] == "png" and body["import_report"]["options"] == {"invert": True}
    np.testing.assert_array_equal(
        annotation_labels(Annotation.objects.get(pk=body["id"])), relabel_sequential(reference)
    )


def test_the_microscopy_image_sent_as_mask_is_refused(nuclei, api_client, media_root):
    before = stored_files(media_root)
    response = post(api_client, nuclei, (STARDIST / "img2d.tif").read_bytes())
    assert response.status_code == 400
    message = " ".join(response.json()["mask"])
    assert "looks like an intensity image, not a label image: its 233 grey values 1..235" in message
    assert nothing_stored(nuclei, media_root, before)


def test_real_label_image_still_imports(nuclei, api_client):
    response = post(api_client, nuclei, (STARDIST / "mask2d.tif").read_bytes())
    assert response.status_code == 201, response.json()
    assert response.json()["instance_count"] == 125
    assert response.json()["import_report"] == {"warnings": [], "skipped": []}


def test_dsb_per_instance_pngs_zipped_round_trip(nuclei, api_client):
    masks = sorted((CONSTRUCTED / "dsb2018_layout" / "img2d" / "masks").glob("*.png"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in masks:
            zf.writestr(f"masks/{path.name}", path.read_bytes())
    response = post(api_client, nuclei, buf.getvalue())
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["upload_format"], body["instance_count"], body["source"]) == (
        "instances", 125, "imported")
    np.testing.assert_array_equal(annotation_labels(Annotation.objects.get(pk=body["id"])), mask2d())


def test_npy_stack_with_a_non_binary_plane_is_a_400(nuclei, api_client):
    stack = np.zeros((2, 512, 512), np.uint8)
    stack[0, :10, :10] = 1
    stack[1, :5, :5], stack[1, 20:25, 20:25] = 1, 2
    buf = io.BytesIO()
    np.save(buf, stack)
    response = post(api_client, nuclei, buf.getvalue())
    assert response.status_code == 400
    assert "npy stack plane 2 holds 3 distinct values" in " ".join(response.json()["mask"])


def test_two_colour_rgb_mask(nuclei, api_client):
    rgb = np.zeros((512, 512, 3), np.uint8)
    rgb[mask2d() > 0] = (255, 255, 255)
    buf = io.BytesIO()
    PILImage.fromarray(rgb).save(buf, format="PNG")
    response = post(api_client, nuclei, buf.getvalue())
    assert response.status_code == 201, response.json()
    reference = sk_label(mask2d() > 0, connectivity=2)
    assert response.json()["instance_count"] == int(reference.max())


def test_qupath_nucleus_geometry_and_bad_option_values(nuclei, api_client):
    cell = [[[0, 0], [40, 0], [40, 40], [0, 40], [0, 0]]]
    nucleus = [[[10, 10], [20, 10], [20, 20], [10, 20], [10, 10]]]
    doc = {"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": {"type": "Polygon", "coordinates": cell},
        "nucleusGeometry": {"type": "Polygon", "coordinates": nucleus},
        "properties": {"objectType": "cell"},
    }]}
    data = json.dumps(doc).encode()
    response = post(api_client, nuclei, data, geometry="membrane")
    assert response.status_code == 400 and "geometry" in response.json()
    response = post(api_client, nuclei, data, geometry="nucleus")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["import_report"]["warnings"] == [
        "imported the nucleus outlines (geometry=nucleus) of 1 QuPath cells."
    ]
    assert body["import_report"]["options"] == {"geometry": "nucleus"}
    assert int((annotation_labels(Annotation.objects.get(pk=body["id"])) == 1).sum()) == 100


def test_coco_crowd_rle_as_instances(nuclei, api_client):
    from annotation.masks.rle import rle_from_indices

    doc = {"images": [{"id": 1, "file_name": "img2d.tif", "width": 512, "height": 512}],
           "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "iscrowd": 1,
                            "segmentation": rle_from_indices(np.arange(100, 160), 512, 512)}],
           "categories": [{"id": 1, "name": "nucleus"}]}
    data = json.dumps(doc).encode()
    response = post(api_client, nuclei, data)
    assert response.status_code == 201 and response.json()["instance_count"] == 0
    assert "crowd=instances" in response.json()["import_report"]["skipped"][0][1]
    response = post(api_client, nuclei, data, crowd="instances", base_revision=1)
    assert response.status_code == 201, response.json()
    assert response.json()["instance_count"] == 1


def test_ome_tiff_in_and_out_keeps_the_pixel_size(nuclei, api_client):
    data = write_mask(mask2d(), format="ome-tiff", pixel_size=PixelSize(y=0.5, x=0.5))
    response = post(api_client, nuclei, data)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["upload_format"], body["source"]) == ("ome-tiff", "manual")
    assert body["import_report"]["pixel_size"] == {"y": 0.5, "x": 0.5, "unit": "µm"}
    api_client.force_authenticate(nuclei.users["qa_lead"])
    out = api_client.get(url("world", "annotations", body["id"], "mask") + "?format=ome-tiff")
    assert out.status_code == 200 and out["Content-Type"] == "image/tiff"
    assert out["Content-Disposition"].endswith('.ome.tif"')
    assert tiff_facts(out.content).pixel_size == PixelSize(y=0.5, x=0.5)
    np.testing.assert_array_equal(read_mask(out.content).labels, mask2d())
    from annotation.services.mask_formats import annotation_pixel_size

    assert annotation_pixel_size(Annotation.objects.get(pk=body["id"])) == PixelSize(0.5, 0.5)


def test_pixel_size_falls_back_to_the_image_metadata_and_is_exported(nuclei, api_client):
    from annotation.services.mask_formats import annotation_pixel_size

    image = nuclei.assignments["nuclei"].image
    image.metadata = {"pixel_size_um": [0.3, 0.2]}
    image.save(update_fields=["metadata"])
    response = post(api_client, nuclei, (STARDIST / "mask2d.tif").read_bytes())
    assert response.status_code == 201, response.json()
    annotation = Annotation.objects.get(pk=response.json()["id"])
    assert "pixel_size" not in annotation.import_report  # the plain TIFF records none
    assert annotation_pixel_size(annotation) == PixelSize(y=0.3, x=0.2)
    api_client.force_authenticate(nuclei.users["qa_lead"])
    out = api_client.get(url("world", "annotations", annotation.pk, "mask") + "?format=ome-tiff")
    assert tiff_facts(out.content).pixel_size == PixelSize(y=0.3, x=0.2)


def test_overlap_loser_left_in_slivers_is_trimmed_and_reported(nuclei, api_client):
    import roifile

    def roi(points, name):
        r = roifile.ImagejRoi.frompoints(np.array(points, np.int32), name=name)
        r.roitype = roifile.ROI_TYPE.POLYGON
        return r.tobytes()

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("big.roi", roi([[0, 0], [30, 0], [30, 30], [0, 30]], "big"))       # 900 px
        zf.writestr("bar.roi", roi([[0, 10], [30, 10], [30, 14], [0, 14]], "bar"))     # 120 px
    response = post(api_client, nuclei, buf.getvalue())
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["instance_count"] == 2
    assert body["import_report"]["warnings"][-1] == (
        "ImageJ ROI 'big' lost 120 of its 900 pixels to overlapping instances and was left in "
        "2 pieces (780 px); kept its largest piece (480 px), dropped 1 piece (300 px)."
    )
    labels = annotation_labels(Annotation.objects.get(pk=body["id"]))
    assert int((labels == 1).sum()) == 480 and labels[:10].max() == 0
