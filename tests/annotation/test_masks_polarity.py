"""Binary and two-colour masks, inverted polarity, and intensity images sent as masks.

Real files: StarDist's ``img2d.tif`` / ``mask2d.tif`` and Omnipose's ``caulo_15.tif`` /
``_cp_masks.tif`` (``tests/data``, see SOURCES.md), and the BU-BIL-style inverted mask
constructed from ``mask2d.tif`` (``tests/data/constructed/bubil_inverted``).
"""

import io

import numpy as np
import pytest
import tifffile
from PIL import Image
from skimage.measure import label as sk_label

from annotation.masks import (
    MaskFormatError,
    check_not_intensity,
    colour_foreground,
    label_image_stats,
    read_mask,
    relabel_sequential,
)
from tests.conftest import TEST_DATA

STARDIST = TEST_DATA / "stardist"
OMNIPOSE = TEST_DATA / "real-formats" / "omnipose_cp_masks"
BUBIL = TEST_DATA / "constructed" / "bubil_inverted" / "img2d_mask.png"


def png(arr: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def tiff(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, arr)
    return buf.getvalue()


# ------------------------------------------------------------------ binary masks


def test_binary_mask_regions_become_instances_8_connected():
    mask = np.zeros((8, 10), np.uint8)
    mask[1:3, 1:3] = 255          # region A
    mask[3, 3] = 255              # touches A diagonally: same instance (8-connected)
    mask[5:7, 6:9] = 255          # region B
    result = read_mask(png(mask))
    assert result.n_instances == 2
    assert result.labels[1, 1] == result.labels[3, 3] == 1 and result.labels[5, 6] == 2
    assert int((result.labels == 1).sum()) == 5 and int((result.labels == 2).sum()) == 6
    assert result.warnings == (
        "binary PNG mask (0 / 255): its 2 connected foreground regions (8-connected) became "
        "instances 1..2; cells that touch are one instance.",
    )


def test_inverted_binary_mask_is_refused_with_the_fix_and_imported_when_asked():
    inverted = np.full((20, 20), 255, np.uint8)
    inverted[2:6, 2:6] = 0      # 16 px cell
    inverted[10:13, 12:18] = 0  # 18 px cell
    with pytest.raises(MaskFormatError) as err:
        read_mask(png(inverted))
    assert str(err.value) == (
        "binary PNG mask (0 / 255): the foreground covers 91.5 % of the image and touches all "
        "four borders: this looks like an inverted mask (cells 0, background non-zero). Import "
        "it with invert=true (import_annotations --invert) to swap cells and background, or "
        "with invert=false (--no-invert) if the foreground really is the cells."
    )
    result = read_mask(png(inverted), invert=True)
    assert result.n_instances == 2
    assert sorted(np.bincount(result.labels.ravel())[1:].tolist()) == [16, 18]
    assert result.warnings[0].startswith("binary PNG mask (0 / 255): inverted as asked")
    # invert=false: the caller says the foreground is cells (a confluent layer).
    kept = read_mask(png(inverted), invert=False)
    assert kept.n_instances == 1 and int((kept.labels == 1).sum()) == 400 - 34


def test_boolean_and_16_bit_binary_tiffs_follow_the_same_rules():
    mask = np.zeros((6, 6), np.uint16)
    mask[1:3, 1:3] = 65535
    assert read_mask(tiff(mask)).n_instances == 1
    with pytest.raises(MaskFormatError, match="covers 88.9 %"):
        read_mask(tiff((mask == 0).astype(np.uint16)))


def test_invert_is_refused_for_a_label_image_and_ignored_for_vector_formats():
    labels = np.zeros((5, 5), np.uint16)
    labels[0, 0], labels[2, 2] = 1, 2
    with pytest.raises(MaskFormatError, match="invert=true applies to binary masks .* label "
                       "image with 2 ids"):
        read_mask(png(labels), invert=True)
    assert read_mask(png(labels), invert=False).n_instances == 2
    geojson = b'{"type": "Polygon", "coordinates": [[[0,0],[2,0],[2,2],[0,2],[0,0]]]}'
    result = read_mask(geojson, shape=(5, 5), invert=True)
    assert result.n_instances == 1
    assert result.warnings[-1] == "invert=true was ignored: a geojson file has no polarity."


def test_bubil_style_inverted_mask_real_cells():
    """mask2d.tif saved as BU-BIL's experts do: cells 0, background 255."""
    data = BUBIL.read_bytes()
    with pytest.raises(MaskFormatError, match=r"covers 8\d(\.\d)? % of the image and touches all"):
        read_mask(data, shape=(512, 512))
    result = read_mask(data, shape=(512, 512), invert=True)
    cells = tifffile.imread(STARDIST / "mask2d.tif") > 0
    # Independent reference: skimage's 8-connected labelling of the cell pixels.
    reference = sk_label(cells, connectivity=2)
    assert result.n_instances == int(reference.max())
    np.testing.assert_array_equal(result.labels > 0, cells)
    np.testing.assert_array_equal(result.labels, relabel_sequential(reference))


# -------------------------------------------------------------- two-colour images


def test_two_colour_rgb_mask_imports_as_binary_brighter_colour_is_cells():
    rgb = np.zeros((10, 12, 3), np.uint8)  # black background
    rgb[2:5, 2:5] = (255, 255, 0)          # yellow cells
    rgb[6:9, 7:11] = (255, 255, 0)
    result = read_mask(png(rgb))
    assert result.n_instances == 2 and int((result.labels > 0).sum()) == 9 + 12
    # ImageJ "Create Mask" without black background, saved as RGB: black cells on white.
    imagej = np.full((10, 12, 3), 255, np.uint8)
    imagej[2:5, 2:5] = 0
    with pytest.raises(MaskFormatError, match="this looks like an inverted mask"):
        read_mask(png(imagej))
    assert read_mask(png(imagej), invert=True).n_instances == 1


def test_rgba_transparent_background_and_too_many_colours():
    rgba = np.zeros((6, 6, 4), np.uint8)  # fully transparent
    rgba[1:3, 1:4] = (200, 30, 30, 255)
    fg = colour_foreground(rgba)
    assert fg.sum() == 6 and fg[1, 1] and not fg[0, 0]
    assert read_mask(png(rgba)).n_instances == 1
    three = np.zeros((6, 6, 3), np.uint8)
    three[0, 0], three[1, 1] = (255, 0, 0), (0, 255, 0)
    with pytest.raises(MaskFormatError, match="colour image with 3 opaque colours; a colour mask "
                       "is accepted only when it holds exactly two colours"):
        read_mask(png(three))
    same = np.zeros((4, 4, 3), np.uint8)
    same[0, 0] = (0, 0, 0)
    same[1:] = (1, 0, 0)  # luma 0.299 vs 0: fine
    assert read_mask(png(same), invert=False).n_instances == 1


def test_real_rgba_image_sent_as_mask_is_refused_by_its_colours():
    data = (OMNIPOSE / "Sample000033.png").read_bytes()
    with pytest.raises(MaskFormatError, match="colour image with 19 opaque colours"):
        read_mask(data)


# ------------------------------------------------------------- intensity images


def test_stardist_image_sent_as_mask_is_refused_naming_what_was_seen():
    with pytest.raises(MaskFormatError) as err:
        read_mask((STARDIST / "img2d.tif").read_bytes(), shape=(512, 512))
    message = str(err.value)
    assert message.startswith("The TIFF mask looks like an intensity image, not a label image: "
                              "its 233 grey values 1..235 (99 % of that range used)")
    assert "98 % of the values are in several pieces (median 56)" in message
    assert message.endswith("Send the mask (label image), not the microscopy image.")


def test_phase_contrast_image_sent_as_mask_is_refused():
    with pytest.raises(MaskFormatError, match="its 19,086 grey values 360..64813"):
        read_mask((OMNIPOSE / "caulo_15.tif").read_bytes())


def test_intensity_statistics_of_real_files():
    img = label_image_stats(tifffile.imread(STARDIST / "img2d.tif"))
    assert (img.n_ids, img.min_id, img.max_id, img.pieces) == (233, 1, 235, 210_490)
    assert img.looks_like_intensity
    caulo = label_image_stats(tifffile.imread(OMNIPOSE / "caulo_15.tif"))
    assert caulo.n_ids == 19_086 and caulo.background_share == 0.0
    assert round(caulo.fragmented_share, 2) == 0.64 and round(caulo.tiny_share, 2) == 0.68
    assert caulo.looks_like_intensity


@pytest.mark.parametrize(
    ("path", "n_cells"),
    [
        (STARDIST / "mask2d.tif", 125),
        (OMNIPOSE / "caulo_15_cp_masks.tif", 21),
        (OMNIPOSE / "Sample000033_cp_masks.tif", 116),
    ],
)
def test_real_label_images_pass_the_intensity_test(path, n_cells):
    arr = tifffile.imread(path)
    check_not_intensity(arr)  # passes
    stats = label_image_stats(arr)
    assert stats.n_ids == n_cells and stats.pieces == n_cells and stats.fragmented_share == 0.0
    assert not stats.looks_like_intensity
    result = read_mask(path.read_bytes())
    assert result.n_instances == n_cells and result.warnings == ()


def test_label_image_with_some_split_ids_and_tiny_cells_passes():
    """A hand-drawn label image: 20 cells, a third of them in two pieces, several tiny."""
    labels = np.zeros((40, 80), np.uint16)
    for k in range(20):
        r, c = divmod(k, 10)
        labels[r * 20 + 2 : r * 20 + 6, c * 8 + 1 : c * 8 + 4] = k + 1
        if k % 3 == 0:
            labels[r * 20 + 10, c * 8 + 1] = k + 1  # a 1-px second piece
    check_not_intensity(labels)
    stats = label_image_stats(labels)
    assert stats.n_ids == 20 and stats.pieces == 27 and not stats.looks_like_intensity
    assert read_mask(png(labels)).n_instances == 20


def test_large_arrays_are_measured_on_a_central_window():
    from annotation.masks.intensity import STATS_CROP

    rng = np.random.default_rng(1)
    noise = rng.integers(1, 200, size=(STATS_CROP + 40, 300)).astype(np.uint8)
    with pytest.raises(MaskFormatError, match=r"central 1024 x 300 window\): its 199 grey values"):
        check_not_intensity(noise)


def test_few_ids_are_never_refused_even_when_scattered():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 8, size=(30, 30)).astype(np.uint8)  # 7 scattered "ids"
    assert read_mask(png(noise)).n_instances == 7
