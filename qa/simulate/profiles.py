"""Annotator profiles (error rates), their presets, and the record of injected errors."""

from __future__ import annotations

from dataclasses import dataclass, replace

ERROR_KINDS = ("missed", "merged", "split", "boundary", "coarse_outline", "debris", "spurious",
               "corruption")
CORRUPTION_MODES = ("shift", "dropout", "blobs", "smear")


@dataclass(frozen=True)
class InjectedError:
    """One error an annotator model put into an annotation.

    Attributes
    ----------
    kind : str
        One of :data:`ERROR_KINDS`.
    gt_ids : tuple of int
        Ground-truth cells concerned (two for ``merged``; empty for ``debris`` and
        ``spurious``).
    annotation_ids : tuple of int
        Instances of the final annotation concerned (two for ``split``; empty for
        ``missed``; ids that no longer exist, e.g. shifted off the image, are left out).
    magnitude : float
        ``boundary``: signed shift in px (negative = erosion); ``coarse_outline``: polygon
        tolerance in px; ``corruption``: shift in px, dropped share, blob count or smear px;
        ``missed``: the cell's faintness (0..1); otherwise 0.
    detail : str
        ``corruption``: the mode; ``missed``: ``"faint"`` or ``""``; ``debris``: the debris id
        in ``SimulatedImage.debris`` as a string.
    """

    kind: str
    gt_ids: tuple[int, ...]
    annotation_ids: tuple[int, ...]
    magnitude: float = 0.0
    detail: str = ""


@dataclass(frozen=True)
class AnnotatorProfile:
    """Error rates of one simulated annotator.

    The steps that use them are described in :mod:`qa.simulate.annotators`.

    Attributes
    ----------
    name : str
        Label of the profile (unique within a panel).
    boundary_bias_px : float
        Systematic outline shift in px, within +-5 (> 0 draws cells too large).
    boundary_jitter_px : float
        Standard deviation of a per-cell extra shift in px (>= 0).
    outline_noise_px : float
        Standard deviation of a smooth wobble along every outline in px (>= 0).
    miss_rate : float
        Probability of missing any cell.
    miss_faint_rate : float
        Extra probability of missing a cell, times its faintness (0..1).
    merge_rate : float
        Probability of merging each pair of touching cells.
    split_rate : float
        Probability of splitting each cell of >= 60 px in two.
    debris_rate : float
        Probability of labelling each debris particle in the image as a cell.
    spurious_per_image : float
        Poisson mean of random blobs drawn in the background.
    polygon_coarseness : float
        Douglas–Peucker tolerance of the outline polygons in px (0 = pixel-exact).
    corruption_rate : float
        Probability that the whole annotation is heavily corrupted.
    careless : bool
        Marks the systematically careless profile(s) of a panel.
    """

    name: str
    boundary_bias_px: float = 0.0
    boundary_jitter_px: float = 0.3
    outline_noise_px: float = 0.0
    miss_rate: float = 0.0
    miss_faint_rate: float = 0.0
    merge_rate: float = 0.0
    split_rate: float = 0.0
    debris_rate: float = 0.0
    spurious_per_image: float = 0.0
    polygon_coarseness: float = 0.0
    corruption_rate: float = 0.0
    careless: bool = False

    def __post_init__(self) -> None:
        for name in ("miss_rate", "miss_faint_rate", "merge_rate", "split_rate", "debris_rate",
                     "corruption_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"AnnotatorProfile.{name} must be in [0, 1], got {value}")
        for name in ("boundary_jitter_px", "outline_noise_px", "spurious_per_image",
                     "polygon_coarseness"):
            if getattr(self, name) < 0:
                raise ValueError(f"AnnotatorProfile.{name} must be >= 0, got {getattr(self, name)}")
        if abs(self.boundary_bias_px) > 5:
            raise ValueError(f"AnnotatorProfile.boundary_bias_px must be within +-5 px, "
                             f"got {self.boundary_bias_px}")


PERFECT = AnnotatorProfile("perfect", boundary_jitter_px=0.0)
EXPERT = AnnotatorProfile("expert", boundary_bias_px=0.0, boundary_jitter_px=0.3,
                          outline_noise_px=0.4, miss_rate=0.02, miss_faint_rate=0.4,
                          merge_rate=0.06, split_rate=0.015, debris_rate=0.05,
                          spurious_per_image=0.3, polygon_coarseness=0.5, corruption_rate=0.04)
GOOD = AnnotatorProfile("good", boundary_bias_px=0.6, boundary_jitter_px=0.4,
                        outline_noise_px=0.5, miss_rate=0.03, miss_faint_rate=0.45,
                        merge_rate=0.08, split_rate=0.02, debris_rate=0.08,
                        spurious_per_image=0.4, polygon_coarseness=0.8, corruption_rate=0.05)
AVERAGE = AnnotatorProfile("average", boundary_bias_px=-1.0, boundary_jitter_px=0.3,
                           outline_noise_px=0.4, miss_rate=0.02, miss_faint_rate=0.5,
                           merge_rate=0.08, split_rate=0.02, debris_rate=0.25,
                           spurious_per_image=0.3, polygon_coarseness=0.6, corruption_rate=0.06)
AVERAGE_DILATING = replace(AVERAGE, name="average_dilating", boundary_bias_px=1.0)
CARELESS = AnnotatorProfile("careless", boundary_bias_px=1.5, boundary_jitter_px=0.6,
                            outline_noise_px=0.8, miss_rate=0.08, miss_faint_rate=0.85,
                            merge_rate=0.3, split_rate=0.06, debris_rate=0.6,
                            spurious_per_image=1.5, polygon_coarseness=1.5,
                            corruption_rate=0.12, careless=True)

_CAREFUL_ORDER = (EXPERT, AVERAGE, GOOD, AVERAGE_DILATING)


def annotator_panel(n: int = 3, *, careless: int = 1) -> tuple[AnnotatorProfile, ...]:
    """A panel of ``n`` annotator profiles of mixed quality, the careless ones last.

    ``n=3, careless=1`` gives (expert, average (1 px erosion), careless);
    ``n=5, careless=1`` gives (expert, average, good (0.6 px dilation), average_dilating,
    careless). Beyond the four careful presets, further careful annotators repeat them
    with a numeric suffix (``expert_2``...). Names are unique within the panel.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not 0 <= careless <= n:
        raise ValueError(f"careless must be in [0, n={n}], got {careless}")
    careful = []
    for i in range(n - careless):
        base = _CAREFUL_ORDER[i % len(_CAREFUL_ORDER)]
        rep = i // len(_CAREFUL_ORDER)
        careful.append(base if rep == 0 else replace(base, name=f"{base.name}_{rep + 1}"))
    sloppy = [CARELESS if i == 0 else replace(CARELESS, name=f"careless_{i + 1}")
              for i in range(careless)]
    return tuple(careful + sloppy)
