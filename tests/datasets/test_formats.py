"""Every export format read back by its own reader gives the same masks."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from datasets.formats.cellpose import cellpose_item_files
from datasets.formats.coco import CocoBuilder
from datasets.formats.items import ExportItem, labels_for_training, safe_stem
from datasets.formats.ome_tiff import ome_axes, ome_tiff_item_files
from datasets.formats.ome_zarr import ome_zarr_item_files


def _labels(seed: int, h: int = 48, w: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = np.zeros((h, w), dtype=np.uint16)
    for i in range(1, 7):
        r, c = rng.integers(0, h - 10), rng.integers(0, w - 10)
        labels[r : r + rng.integers(4, 10), c : c + rng.integers(4, 10)] = i * 3  # ids 3, 6, ...
    labels[0:6, 0:6] = 40
    labels[2:4, 2:4] = 0  # a hole: RLE territory
    return labels


def _item(name: str, split: str, seed: int, **kw) -> ExportItem:
    labels = _labels(seed)
    image = np.random.default_rng(seed).integers(0, 65535, labels.shape, dtype=np.uint16)
    return ExportItem(name=name, split=split, labels=labels, image=image, **kw)


def _write(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def test_cellpose_folder_loads_with_cellpose_io(tmp_path):
    from cellpose import io as cp_io

    items = [_item(f"img{i}", "train" if i < 3 else "test", i) for i in range(5)]
    for it in items:
        _write(tmp_path, cellpose_item_files(it, seg_npy=True))
    images, labels, names, test_images, test_labels, test_names = cp_io.load_train_test_data(
        str(tmp_path / "train"), str(tmp_path / "test"))
    assert [Path(n).stem for n in names] == ["img0", "img1", "img2"]
    assert [Path(n).stem for n in test_names] == ["img3", "img4"]
    for it, img, lab in zip(items[:3], images, labels, strict=True):
        np.testing.assert_array_equal(lab, it.labels)
        np.testing.assert_array_equal(img, it.image)
    for it, lab in zip(items[3:], test_labels, strict=True):
        np.testing.assert_array_equal(lab, it.labels)
    assert (tmp_path / "train" / "img0_seg.npy").exists()


def test_cellpose_copies_original_image_bytes_and_drops_ignore_cells_on_request(tmp_path):
    it = _item("a", "train", 1, image_bytes=b"PNGBYTES", image_ext=".PNG", ignore=frozenset({3}))
    files = cellpose_item_files(it, ignore="drop")
    assert files["train/a.png"] == b"PNGBYTES"
    masks = tifffile.imread(io.BytesIO(files["train/a_masks.tif"]))
    assert 3 not in masks and 6 in masks
    np.testing.assert_array_equal(masks, labels_for_training(it, ignore="drop"))


def test_coco_export_decodes_exactly_with_pycocotools(tmp_path):
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO

    builder = CocoBuilder(categories=["nucleus", "mitotic"], default_class="nucleus")
    items = [
        _item("a", "train", 1, classes={6: "mitotic"}, ignore=frozenset({9}),
              cells={3: {"support": 3, "confidence": 0.97, "gate": "keep"}}),
        _item("b", "val", 2),
    ]
    for it in items:
        _write(tmp_path, builder.add(it))
    _write(tmp_path, builder.finish(info={"snapshot": "s1"}))
    assert (tmp_path / "images/train/a.tif").exists()
    for it in items:
        coco = COCO(str(tmp_path / f"annotations/instances_{it.split}.json"))
        (img_info,) = coco.dataset["images"]
        assert img_info["file_name"] == f"{it.name}.tif"
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[img_info["id"]], iscrowd=None))
        rebuilt = np.zeros_like(it.labels)
        for ann in anns:
            m = coco.annToMask(ann).astype(bool)
            assert not (rebuilt[m] != 0).any()  # instances do not overlap
            rebuilt[m] = ann["cell_id"]
            assert ann["area"] == float(mask_utils.area(ann["segmentation"]))
            cat = coco.loadCats(ann["category_id"])[0]["name"]
            assert cat == it.classes.get(ann["cell_id"], "nucleus")
            assert ann["iscrowd"] == int(ann["cell_id"] in it.ignore)
        np.testing.assert_array_equal(rebuilt, it.labels)
    doc = json.loads((tmp_path / "annotations/instances_train.json").read_text())
    qa = {a["cell_id"]: a.get("qa") for a in doc["annotations"]}
    assert qa[3] == {"support": 3, "confidence": 0.97, "gate": "keep"}
    assert doc["info"]["snapshot"] == "s1"


def test_coco_polygons_on_request_rasterise_back_to_the_same_pixels(tmp_path):
    from pycocotools.coco import COCO

    builder = CocoBuilder(categories=["cell"], default_class="cell", segmentation="polygon")
    it = _item("p", "train", 3)
    builder.add(it)
    _write(tmp_path, builder.finish())
    coco = COCO(str(tmp_path / "annotations/instances_train.json"))
    kinds = set()
    rebuilt = np.zeros_like(it.labels)
    for ann in coco.loadAnns(coco.getAnnIds()):
        kinds.add("poly" if isinstance(ann["segmentation"], list) else "rle")
        rebuilt[coco.annToMask(ann).astype(bool)] = ann["cell_id"]
    assert kinds == {"poly", "rle"}  # the cell with a hole stays RLE
    np.testing.assert_array_equal(rebuilt, it.labels)


def test_coco_refuses_a_class_outside_the_categories():
    builder = CocoBuilder(categories=["nucleus"], default_class="nucleus")
    with pytest.raises(ValueError, match="'golgi' of cell 3"):
        builder.add(_item("x", "train", 1, classes={3: "golgi"}))


def test_ome_tiff_keeps_pixels_labels_and_pixel_size():
    it = _item("o", "test", 4, pixel_size_um=0.325)
    files = ome_tiff_item_files(it)
    with tifffile.TiffFile(io.BytesIO(files["images/test/o.ome.tif"])) as tif:
        assert tif.is_ome
        np.testing.assert_array_equal(tif.asarray(), it.image)
        ome = tif.ome_metadata
    assert 'PhysicalSizeX="0.325"' in ome and 'PhysicalSizeXUnit="µm"' in ome
    with tifffile.TiffFile(io.BytesIO(files["labels/test/o.ome.tif"])) as tif:
        labels = tif.asarray()
        assert 'PhysicalSizeY="0.325"' in tif.ome_metadata
    assert labels.dtype == np.uint16
    np.testing.assert_array_equal(labels, it.labels)


def test_ome_axes_follow_pages_and_channels():
    rgbish = np.zeros((10, 12, 2), dtype=np.uint8)
    moved, axes = ome_axes(rgbish, channels=2)
    assert axes == "CYX" and moved.shape == (2, 10, 12)
    stack = np.zeros((3, 10, 12, 2), dtype=np.uint8)
    moved, axes = ome_axes(stack, channels=2, pages=3)
    assert axes == "ZCYX" and moved.shape == (3, 2, 10, 12)
    with pytest.raises(ValueError, match="not 1 page"):
        ome_axes(rgbish)


def test_ome_zarr_reads_back_with_ome_zarr_and_carries_qa_properties(tmp_path):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    cells = {3: {"support": 3, "confidence": 0.91, "agreement": 0.8, "gate": "keep"},
             6: {"support": 1, "confidence": float("nan"), "gate": "ignore"}}
    it = _item("z", "val", 5, classes={3: "mitotic"}, ignore=frozenset({6}), cells=cells,
               pixel_size_um=0.5)
    _write(tmp_path, ome_zarr_item_files(it, default_class="nucleus"))
    root = tmp_path / "val" / "z.ome.zarr"
    (image_node, *_) = list(Reader(parse_url(str(root)))())
    np.testing.assert_array_equal(np.asarray(image_node.data[0]), it.image)
    assert image_node.metadata["coordinateTransformations"][0][0]["scale"] == [0.5, 0.5]
    (label_node,) = list(Reader(parse_url(str(root / "labels" / "cells")))())
    np.testing.assert_array_equal(np.asarray(label_node.data[0]), it.labels)
    props = label_node.metadata["properties"]
    assert props[3] == {"class": "mitotic", "ignore": False, "support": 3, "confidence": 0.91,
                        "agreement": 0.8, "gate": "keep"}
    assert props[6] == {"class": "nucleus", "ignore": True, "support": 1, "confidence": None,
                        "gate": "ignore"}
    assert set(props) == set(np.unique(it.labels)[1:].tolist())


def test_items_refuse_unsafe_names_and_mismatched_shapes():
    labels = np.zeros((4, 4), dtype=np.uint16)
    with pytest.raises(ValueError, match="not a safe file stem"):
        ExportItem(name="../x", split="train", labels=labels, image=labels)
    with pytest.raises(ValueError, match="does not match"):
        ExportItem(name="x", split="train", labels=labels, image=np.zeros((5, 4), np.uint16))
    assert safe_stem("a b/../c d.tif") == "c_d.tif"
