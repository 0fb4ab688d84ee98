"""Label images shared by the annotation.masks tests, and checks that they are what
the tests rely on (so a changed fixture fails loudly here, not obscurely elsewhere)."""

import numpy as np
import tifffile
from scipy import ndimage

from tests.conftest import TEST_DATA

#: Real files written by other tools (origin and licence in ``tests/data/SOURCES.md``).
REAL_FORMATS = TEST_DATA / "real-formats"


def stardist_mask() -> np.ndarray:
    """StarDist's real nuclei mask: 512 x 512 uint16, 125 nuclei, ids up to 183."""
    return tifffile.imread(TEST_DATA / "stardist" / "mask2d.tif")


def synthetic_mask() -> np.ndarray:
    """48 x 40 uint16 label image exercising the awkward cases.

    3 and 7 touch along an edge; 9 is a ring whose hole holds 12; 20 lies on the top
    border and has a notch; 31 is in two pieces; 41 touches 31 at a corner and along
    an edge; 40 sits in the bottom-right corner; 50 is two blocks meeting at one corner.
    """
    m = np.zeros((48, 40), np.uint16)
    m[4:14, 4:12] = 3
    m[4:14, 12:20] = 7
    m[18:34, 4:20] = 9
    m[22:30, 8:16] = 0
    m[24:28, 10:14] = 12
    m[0:6, 24:34] = 20
    m[0:3, 24:27] = 0
    m[10:16, 24:30] = 31
    m[20:26, 28:34] = 31
    m[16:20, 30:34] = 41
    m[40:48, 30:40] = 40
    m[36:40, 4:8] = 50
    m[40:44, 8:12] = 50
    return m


def per_cell_iou(a: np.ndarray, b: np.ndarray) -> dict[int, float]:
    """IoU of each id of ``a`` with the same id in ``b``."""
    out = {}
    for i in np.unique(a):
        if i == 0:
            continue
        x, y = a == i, b == i
        out[int(i)] = float((x & y).sum() / (x | y).sum())
    return out


def test_stardist_mask_is_the_documented_real_mask():
    m = stardist_mask()
    ids = np.unique(m)[1:]
    assert m.shape == (512, 512) and m.dtype == np.uint16
    assert len(ids) == 125 and int(ids.max()) == 183
    pieces = {int(i): ndimage.label(m == i)[1] for i in ids}
    assert [i for i, n in pieces.items() if n > 1] == [129]
    border = set(np.unique(np.concatenate([m[0], m[-1], m[:, 0], m[:, -1]])).tolist()) - {0}
    assert len(border) >= 5


def test_synthetic_mask_has_the_awkward_cases():
    m = synthetic_mask()
    assert np.unique(m).tolist() == [0, 3, 7, 9, 12, 20, 31, 40, 41, 50]
    assert ndimage.label(m == 31)[1] == 2
    assert ndimage.label(m == 50)[1] == 2  # 4-connectivity: the blocks meet at a corner
    assert m[0, 30] == 20 and m[47, 39] == 40
    assert int((m == 9).sum()) == 16 * 16 - 8 * 8
