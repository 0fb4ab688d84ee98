"""A Cellpose 3 model as a bioimage.io model package (``bioimageio.spec`` 0.5), for others to run.

Pure (numpy, torch, cellpose, bioimageio.spec; never Django): the caller gives a weights
file, one test image and the lineage; :func:`build_package` writes a zip holding
``rdf.yaml``, TorchScript weights of the network (its flows and cell probability, the
part every consumer can run), a test input and the matching output as ``.npy``, a cover
and documentation.  Turning flows into masks is Cellpose's flow dynamics, named in the
description's postprocessing note and ``config``.  ``training_data`` and ``parent`` point
to the dataset snapshot's manifest hash and the parent model; the whole lineage is in
``config.cellcurate``.  Nothing is fetched from the network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Percentiles of Cellpose's per-channel normalisation (``cellpose.transforms.normalize99``).
LOWER, UPPER = 1.0, 99.0
EPS = 1e-6
CELLPOSE_DOI = "10.1038/s41592-020-01018-x"


@dataclass(frozen=True)
class PackageInfo:
    """What the package says about the model.

    Attributes
    ----------
    model_id : str
        Lower-case id (``[a-z0-9_./-]``), e.g. ``cellcurate/<project>/<name>-v<version>``.
    name, description : str
    version : int
    dataset_id : str
        Id of the training data: ``cellcurate/snapshot-<content hash>``.
    parent_id : str or None
        Id of the model this one was fine-tuned from.
    lineage : mapping
        JSON-ready facts kept in ``config.cellcurate`` (hashes, code version, metrics...).
    authors : tuple of str
    """

    model_id: str
    name: str
    description: str
    version: int
    dataset_id: str
    parent_id: str | None
    lineage: Mapping[str, Any]
    authors: tuple[str, ...] = ("CellCurate",)


def normalize(x: np.ndarray) -> np.ndarray:
    """Per-channel percentile scaling of a (B, C, Y, X) float32 batch, as ``scale_range`` does."""
    lo = np.percentile(x, LOWER, axis=(2, 3), keepdims=True)
    hi = np.percentile(x, UPPER, axis=(2, 3), keepdims=True)
    return ((x - lo) / (hi - lo + EPS)).astype(np.float32)


def test_input(image: np.ndarray, *, nchan: int, size: int = 64) -> np.ndarray:
    """A (1, nchan, size, size) float32 crop of ``image`` (grey in channel 0, other channels zero)."""
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 3:
        img = img[..., 0] if img.shape[-1] <= 4 else img[0]
    if img.ndim != 2:
        raise ValueError(f"test image must be (H, W) or have channels, got shape {np.shape(image)}")
    out = np.zeros((1, nchan, size, size), np.float32)
    h, w = min(size, img.shape[0]), min(size, img.shape[1])
    out[0, 0, :h, :w] = img[:h, :w]
    return out


def _flows_module(weights: Path, diam_mean: float | None):
    import torch

    from training.backbones.cellpose import load_model

    net = load_model(weights, device="cpu", diam_mean=diam_mean).net
    inner = getattr(net, "inner", net)

    class Flows(torch.nn.Module):
        def __init__(self, cpnet):
            super().__init__()
            self.cpnet = cpnet

        def forward(self, x):
            return self.cpnet(x)[0]

    return Flows(inner).eval(), int(inner.nbase[0])


def _cover(x: np.ndarray, y: np.ndarray, path: Path) -> None:
    from PIL import Image as PILImage

    def grey(a):
        a = a.astype(np.float64)
        span = np.ptp(a)
        return ((a - a.min()) / span * 255 if span else np.zeros_like(a)).astype(np.uint8)

    prob = 1.0 / (1.0 + np.exp(-y[0, 2].astype(np.float64)))
    tile = np.concatenate([grey(x[0, 0]), (prob * 255).astype(np.uint8)], axis=1)
    PILImage.fromarray(tile).resize((tile.shape[1] * 4, tile.shape[0] * 4), PILImage.NEAREST).save(path)


def build_package(*, weights: Path, image: np.ndarray, info: PackageInfo, workdir: Path,
                  diam_mean: float | None = None, flow_threshold: float = 0.4,
                  cellprob_threshold: float = 0.0) -> Path:
    """Write the bioimage.io package of a Cellpose 3 weights file; the zip's path.

    Parameters
    ----------
    weights : Path
        A Cellpose 3 state dict (as :mod:`training.backbones.cellpose` writes).
    image : ndarray, (H, W) or with channels
        The test image (cropped to 64 x 64 from its top-left corner).
    info : PackageInfo
    workdir : Path
        An empty folder for the files; the zip is written there.
    diam_mean, flow_threshold, cellprob_threshold
        Recorded for consumers that run Cellpose's dynamics on the flows.

    Returns
    -------
    Path of ``<workdir>/<name>.bioimageio.zip``; validated by ``bioimageio.spec`` on saving.
    """
    import torch
    from bioimageio.spec import save_bioimageio_package
    from bioimageio.spec.dataset.v0_3 import DatasetId, LinkedDataset
    from bioimageio.spec.model import v0_5 as spec

    module, nchan = _flows_module(weights, diam_mean)
    x = test_input(image, nchan=nchan)
    with torch.no_grad():
        y = module(torch.from_numpy(normalize(x))).numpy().astype(np.float32)
        traced = torch.jit.trace(module, torch.from_numpy(normalize(x)))
    files = {"weights": workdir / "weights.torchscript.pt", "x": workdir / "test_input.npy",
             "y": workdir / "test_output.npy", "cover": workdir / "cover.png", "doc": workdir / "README.md"}
    traced.save(str(files["weights"]))
    np.save(files["x"], x)
    np.save(files["y"], y)
    _cover(x, y, files["cover"])
    files["doc"].write_text(_documentation(info, diam_mean, flow_threshold, cellprob_threshold))

    space = [spec.SpaceInputAxis(id=spec.AxisId(a), size=spec.ParameterizedSize(min=16, step=16))
             for a in ("y", "x")]
    inp = spec.InputTensorDescr(
        id=spec.TensorId("raw"), description="image; channel 0 the cells, others as trained (zeros: none)",
        axes=[spec.BatchAxis(), spec.ChannelAxis(channel_names=[spec.Identifier(f"c{i}") for i in range(nchan)]),
              *space],
        test_tensor=spec.FileDescr(source=files["x"]),
        preprocessing=[spec.ScaleRangeDescr(kwargs=spec.ScaleRangeKwargs(
            axes=[spec.AxisId("y"), spec.AxisId("x")], min_percentile=LOWER, max_percentile=UPPER, eps=EPS))],
    )
    out = spec.OutputTensorDescr(
        id=spec.TensorId("flows"), description="Cellpose flows dY, dX and cell-probability logits",
        axes=[spec.BatchAxis(), spec.ChannelAxis(channel_names=[spec.Identifier(n) for n in ("dy", "dx", "cellprob")]),
              *[spec.SpaceOutputAxis(id=spec.AxisId(a), size=spec.SizeReference(
                  tensor_id=spec.TensorId("raw"), axis_id=spec.AxisId(a))) for a in ("y", "x")]],
        test_tensor=spec.FileDescr(source=files["y"]),
    )
    descr = spec.ModelDescr(
        name=info.name, description=info.description, id=spec.ModelId(info.model_id),
        version=spec.Version(f"{info.version}.0.0"),
        authors=[spec.Author(name=a) for a in info.authors],
        cite=[spec.CiteEntry(text="Stringer et al. Cellpose: a generalist algorithm for cellular "
                             "segmentation. Nature Methods (2021)", doi=spec.Doi(CELLPOSE_DOI))],
        license=spec.LicenseId("BSD-3-Clause"), documentation=spec.FileDescr(source=files["doc"]),
        covers=[spec.FileDescr(source=files["cover"])],
        tags=["cellpose", "cell-segmentation", "instance-segmentation", "2d", "cellcurate"],
        inputs=[inp], outputs=[out],
        weights=spec.WeightsDescr(torchscript=spec.TorchscriptWeightsDescr(
            source=files["weights"], pytorch_version=spec.Version(torch.__version__.split("+")[0]))),
        training_data=LinkedDataset(id=DatasetId(info.dataset_id)),
        parent=None if info.parent_id is None else spec.LinkedModel(id=spec.ModelId(info.parent_id)),
        config={"cellcurate": dict(info.lineage),
                "cellpose": {"diam_mean": diam_mean, "flow_threshold": flow_threshold,
                             "cellprob_threshold": cellprob_threshold, "postprocessing": "cellpose_flow_dynamics"}},
    )
    return save_bioimageio_package(descr, output_path=workdir / f"{info.model_id.replace('/', '_')}.bioimageio.zip")


def _documentation(info: PackageInfo, diam_mean, flow_threshold, cellprob_threshold) -> str:
    lines = [f"# {info.name} (version {info.version})", "", info.description, "",
             "## Use", "",
             "A Cellpose 3 network fine-tuned in CellCurate.  The TorchScript weights map an image "
             f"(channels first, scaled per channel between its {LOWER:g}th and {UPPER:g}th percentiles) "
             "to Cellpose's flows and cell-probability logits.  Masks come from Cellpose's flow "
             f"dynamics (`cellpose.dynamics.compute_masks`, flow threshold {flow_threshold}, cell "
             f"probability threshold {cellprob_threshold}).  Resize images so that cells are about "
             f"{diam_mean} px across (the training diameter) first.", "",
             "## Lineage", "",
             f"- training data: snapshot `{info.dataset_id}` (its manifest's content hash)",
             f"- parent model: `{info.parent_id or 'none (random initialisation)'}`"]
    lines += [f"- {k}: `{v}`" for k, v in info.lineage.items() if not isinstance(v, dict | list)]
    metrics = info.lineage.get("metrics") or {}
    lines += ["", "## Validation", ""]
    if metrics.get("model"):
        lines.append(f"Evaluated in CellCurate on the snapshot's `{metrics.get('split')}` split "
                     f"({metrics.get('n_images')} images), pooled over cells:")
        lines.append("")
        for who in ("model", "base"):
            if metrics.get(who):
                lines.append(f"- {who}: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics[who].items()))
    else:
        lines.append("Not evaluated (the snapshot had no test or validation images).")
    lines += ["", "The test input and output in this package were produced by these weights on CPU."]
    return "\n".join(lines) + "\n"
