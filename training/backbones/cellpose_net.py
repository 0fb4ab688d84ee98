"""Cellpose 3's network as the Cellpose backbone builds, loads and runs it.

A weights file is a plain ``state_dict`` of ``cellpose.resnet_torch.CPnet``; the U-Net's
widths (``nbase``) are read back from the tensor shapes, so nets narrower than Cellpose's
default load as easily as the published models.  torch and cellpose are imported inside
functions only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from training.backbones.base import WeightsError, read_weights_file

BACKBONE = "cellpose"
DEFAULT_NBASE = (32, 64, 128, 256)


def nbase_from_state(state: dict, path: Path) -> list[int]:
    """Recover ``[nchan, *widths]`` of a CPnet from its state dict."""
    if "W2" in state:
        raise WeightsError(f"weights file {path} is a Cellpose 4 (SAM) model; Cellpose 3 needed")
    widths: list[int] = []
    level = 0
    while f"downsample.down.res_down_{level}.conv.conv_0.2.weight" in state:
        w = state[f"downsample.down.res_down_{level}.conv.conv_0.2.weight"]
        if level == 0:
            widths.append(int(w.shape[1]))
        widths.append(int(w.shape[0]))
        level += 1
    if level < 1 or "output.2.weight" not in state:
        raise WeightsError(f"weights file {path} is not a Cellpose 3 network state dict")
    return widths


def load_state(path) -> tuple[dict, list[int]]:
    state = read_weights_file(path)
    if isinstance(state, dict) and state.get("backbone") == BACKBONE and "model" in state:
        state = state["model"]  # a checkpoint of ours
    if not isinstance(state, dict):
        raise WeightsError(f"weights file {path} holds a {type(state).__name__}, not a state dict")
    return state, nbase_from_state(state, Path(path))


def build_net(nbase: Sequence[int], *, diam_mean: float, seed: int, device):
    import torch
    from cellpose.resnet_torch import CPnet

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = CPnet(list(nbase), 3, sz=3, mkldnn=False, max_pool=True, diam_mean=diam_mean)
    return net.to(device)


def set_diam(net, name: str, value: float) -> None:
    import torch

    getattr(net, name).data = torch.full((1,), float(value), device=net.diam_mean.device)


class StylePadded:
    """Cellpose's tiling code stores 256-long style vectors; narrower nets pad theirs."""

    @staticmethod
    def wrap(net):
        import torch

        class StylePadded(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner
                self.mkldnn = False
                self.nout = inner.nout

            @property
            def device(self):
                return self.inner.device

            def forward(self, x):
                y, style, levels = self.inner(x)
                return y, torch.nn.functional.pad(style, (0, 256 - style.shape[1])), levels

        return StylePadded(net)
