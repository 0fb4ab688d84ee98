"""Assist: a box around a synthetic cell returns a mask covering it (classical and SAM paths)."""

import numpy as np
import pytest

from tests.factories import ImageFactory, png_bytes
from training.assist import METHOD, segment_in_box
from training.services.data import training_storage

YY, XX = np.mgrid[:96, :128]
CELL = (YY - 40) ** 2 + (XX - 60) ** 2 <= 12 ** 2
NEIGHBOUR = (YY - 40) ** 2 + (XX - 85) ** 2 <= 10 ** 2


def _cell_image(seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = 300.0 + 2500.0 * (CELL | NEIGHBOUR) + rng.normal(0, 40, CELL.shape)
    return np.clip(img, 0, 65535).astype(np.uint16)


def _rle_decode(rle: dict) -> np.ndarray:
    flat = np.zeros(rle["size"][0] * rle["size"][1], bool)
    pos, value = 0, False
    for n in rle["counts"]:
        flat[pos:pos + n] = value
        pos, value = pos + n, not value
    assert pos == flat.size
    return flat.reshape(rle["size"])


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_classical_fallback_segments_the_cell_in_the_box_not_its_neighbour():
    # The box also catches part of the neighbour on the right; the centre cell is kept.
    result = segment_in_box(_cell_image(), (44, 24, 78, 56))
    assert result.method == METHOD
    assert _iou(result.mask, CELL) > 0.9
    assert not (result.mask & NEIGHBOUR).any()
    # A positive click on the neighbour picks it instead.
    other = segment_in_box(_cell_image(), (44, 24, 98, 56), points=np.array([[85.0, 40.0]]))
    assert _iou(other.mask, NEIGHBOUR) > 0.85 and not (other.mask & CELL).any()


def test_classical_fallback_handles_dark_cells_and_empty_boxes():
    dark = (4000 - _cell_image().astype(np.int32)).astype(np.uint16)
    assert _iou(segment_in_box(dark, (44, 24, 78, 56)).mask, CELL) > 0.9
    flat = np.full((32, 32), 7, np.uint16)
    empty = segment_in_box(flat, (2, 2, 20, 20))
    assert empty.mask.sum() == 0 and empty.score == 0.0
    with pytest.raises(ValueError, match="x1 > x0"):
        segment_in_box(flat, (20, 2, 10, 20))


@pytest.fixture
def cell_world(world):
    image = ImageFactory(project=world.project, content=png_bytes(_cell_image()), height=96, width=128)
    world.cell_image = image
    return world


URL = "/api/v1/projects/world/images/{}/assist/"


def test_assist_endpoint_without_sam_answers_with_the_classical_method(cell_world, api_client, settings):
    settings.ASSIST_SAM_WEIGHTS = ""
    api_client.force_authenticate(cell_world.users["qa_lead"])
    response = api_client.post(URL.format(cell_world.cell_image.pk), {"box": [44, 24, 78, 56]}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["method"] == "classical:otsu+watershed" and body["embedding_cached"] is None
    mask = _rle_decode(body["rle"])
    assert mask.shape == (96, 128) and _iou(mask, CELL) > 0.9 and body["area"] == int(mask.sum())
    x0, y0, x1, y1 = body["bbox"]
    assert 44 <= x0 and x1 <= 78 and 24 <= y0 and y1 <= 56


def test_assist_refuses_bad_prompts_and_hides_images_from_non_members(cell_world, api_client, settings):
    settings.ASSIST_SAM_WEIGHTS = ""
    api_client.force_authenticate(cell_world.users["qa_lead"])
    url = URL.format(cell_world.cell_image.pk)
    bad = api_client.post(url, {"box": [50, 24, 40, 56]}, format="json")
    assert bad.status_code == 400 and "box" in bad.json()
    none = api_client.post(url, {}, format="json")
    assert none.status_code == 400 and "box" in none.json()
    # An annotator without an assignment for the image does not see it.
    api_client.force_authenticate(cell_world.users["annotator"])
    assert api_client.post(url, {"box": [44, 24, 78, 56]}, format="json").status_code == 404
    api_client.force_authenticate(cell_world.users["non_member"])
    assert api_client.post(url, {"box": [44, 24, 78, 56]}, format="json").status_code == 404


def _tiny_sam_file(path):
    from training.backbones.base import write_torch_file
    from training.backbones.sam_model import arch_of, build

    arch = arch_of("tiny")
    sam = build(arch, seed=0, device="cpu")
    return write_torch_file(path, {"backbone": "sam", "model": sam.state_dict(), "arch": arch})


def test_assist_with_sam_embeds_once_per_image_and_model(cell_world, api_client, settings, tmp_path):
    # A tiny randomly initialised SAM: the code path is real, the mask quality is not judged.
    settings.ASSIST_SAM_WEIGHTS = str(_tiny_sam_file(tmp_path / "tiny_sam.pt"))
    settings.TRAINING_DEVICE = "cpu"
    api_client.force_authenticate(cell_world.users["ml_engineer"])
    url = URL.format(cell_world.cell_image.pk)
    first = api_client.post(url, {"box": [44, 24, 78, 56]}, format="json").json()
    assert first["method"] == "sam:tiny_sam.pt" and first["embedding_cached"] is False
    assert isinstance(first["score"], float)
    assert _rle_decode(first["rle"]).shape == (96, 128)
    cached = [f for f in training_storage().listdir(f"training/embeddings/{cell_world.cell_image.sha256}")[1]]
    assert len(cached) == 1 and cached[0].endswith(".pt")
    second = api_client.post(url, {"points": [[60, 40]], "point_labels": [1]}, format="json").json()
    assert second["embedding_cached"] is True and second["method"] == first["method"]
    third = api_client.post(url, {"box": [44, 24, 78, 56]}, format="json").json()
    assert third["rle"] == first["rle"]  # same embedding, same prompt, same mask


def test_leasing_an_image_precomputes_its_embedding_when_sam_is_configured(
        cell_world, api_client, settings, tmp_path, django_capture_on_commit_callbacks):
    from annotation.enums import AssignmentStatus
    from tests.factories import AssignmentFactory
    from training.services.assist import assist_precompute_schedule

    image = cell_world.cell_image
    AssignmentFactory(image=image, annotator=cell_world.users["annotator"], status=AssignmentStatus.PENDING,
                      priority=5)  # handed out before the world's own tasks
    folder = f"training/embeddings/{image.sha256}"
    settings.ASSIST_SAM_WEIGHTS = ""
    assert assist_precompute_schedule(image=image) is False  # no SAM configured: nothing to do

    settings.ASSIST_SAM_WEIGHTS = str(_tiny_sam_file(tmp_path / "tiny_sam.pt"))
    settings.TRAINING_DEVICE = "cpu"
    assert not training_storage().exists(folder)
    api_client.force_authenticate(cell_world.users["annotator"])
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        leased = api_client.post("/api/v1/projects/world/assignments/next/", {}, format="json")
    assert leased.status_code == 200 and leased.json()["image"]["id"] == image.pk
    assert len(callbacks) == 1  # the embedding task, queued after the lease committed
    assert len(training_storage().listdir(folder)[1]) == 1
    # The editor's first prompt is decoder-only, and asking again queues nothing.
    first = api_client.post(URL.format(image.pk), {"box": [44, 24, 78, 56]}, format="json").json()
    assert first["embedding_cached"] is True and first["method"] == "sam:tiny_sam.pt"
    assert assist_precompute_schedule(image=image) is False
