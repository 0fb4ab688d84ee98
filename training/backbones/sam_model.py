"""Segment Anything models as the SAM backbone builds, embeds with and prompts them.

``vit_b``/``vit_l``/``vit_h`` come from ``segment_anything.sam_model_registry`` (an
official checkpoint's architecture is recognised from its encoder width); ``tiny`` is a
small ViT assembled from ``segment_anything.modeling`` for tests and CI.  torch and
segment_anything are imported inside functions only.
"""

from __future__ import annotations

import numpy as np

from training.backbones.base import WeightsError, image_hw, read_weights_file

BACKBONE = "sam"
TINY = {"name": "tiny", "img_size": 128, "patch_size": 8, "embed_dim": 32, "depth": 2,
        "num_heads": 2, "window_size": 4, "global_attn_indexes": [1], "prompt_dim": 32,
        "decoder_mlp_dim": 64, "decoder_heads": 2, "iou_hidden": 32, "mask_in_chans": 4}
_OFFICIAL = {768: "vit_b", 1024: "vit_l", 1280: "vit_h"}


def arch_of(name: str) -> dict:
    return dict(TINY) if name == "tiny" else {"name": name}


def load_state(path) -> tuple[dict, dict]:
    """(state dict, architecture) of one of our SAM files or an official checkpoint."""
    obj = read_weights_file(path)
    if isinstance(obj, dict) and obj.get("backbone") == BACKBONE and "model" in obj:
        return obj["model"], dict(obj["arch"])
    if isinstance(obj, dict) and "mask_decoder.iou_token.weight" in obj:
        width = int(obj["image_encoder.patch_embed.proj.weight"].shape[0])
        if width not in _OFFICIAL:
            raise WeightsError(f"weights file {path}: unknown SAM encoder width {width}")
        return obj, {"name": _OFFICIAL[width]}
    raise WeightsError(f"weights file {path} is not a Segment Anything checkpoint")


def build(arch: dict, *, seed: int, device):
    import torch
    from segment_anything import sam_model_registry

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if arch["name"] != "tiny":
            sam = sam_model_registry[arch["name"]]()
        else:
            sam = build_tiny(arch)
    return sam.to(device)


def build_tiny(a: dict):
    from functools import partial

    import torch
    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    grid = a["img_size"] // a["patch_size"]
    return Sam(
        image_encoder=ImageEncoderViT(
            depth=a["depth"], embed_dim=a["embed_dim"], img_size=a["img_size"], mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=a["num_heads"],
            patch_size=a["patch_size"], qkv_bias=True, use_rel_pos=True,
            global_attn_indexes=tuple(a["global_attn_indexes"]), window_size=a["window_size"],
            out_chans=a["prompt_dim"]),
        prompt_encoder=PromptEncoder(
            embed_dim=a["prompt_dim"], image_embedding_size=(grid, grid),
            input_image_size=(a["img_size"], a["img_size"]), mask_in_chans=a["mask_in_chans"]),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=a["prompt_dim"],
                                          mlp_dim=a["decoder_mlp_dim"],
                                          num_heads=a["decoder_heads"]),
            transformer_dim=a["prompt_dim"], iou_head_depth=3,
            iou_head_hidden_dim=a["iou_hidden"]),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])


def to_rgb(image: np.ndarray, channels: tuple[int, ...] | None) -> np.ndarray:
    """(H, W, 3) float32 in 0..255, each channel scaled between its 1st and 99th percentile."""
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 2:
        img = img[..., None]
    elif img.shape[-1] > 4:  # (C, H, W)
        img = np.moveaxis(img, 0, -1)
    if channels is not None:
        if max(channels) >= img.shape[-1]:
            raise ValueError(f"channels {channels} asked of an image with {img.shape[-1]}")
        img = img[..., list(channels)]
    if img.shape[-1] == 1 and channels is None:
        img = np.repeat(img, 3, axis=-1)
    img = img[..., :3]
    out = np.zeros((*img.shape[:2], 3), np.float32)
    for c in range(img.shape[-1]):
        lo, hi = np.percentile(img[..., c], (1, 99))
        if hi > lo:
            out[..., c] = np.clip((img[..., c] - lo) / (hi - lo), 0, 1) * 255
    return out


def embed(sam, images, channels, device) -> list:
    """Image embeddings (1, C, h, w), computed once, and the resized input size."""
    import torch
    import torch.nn.functional as F

    size = sam.image_encoder.img_size
    out = []
    sam.image_encoder.eval()
    for img in images:
        h, w = image_hw(np.asarray(img))
        scale = size / max(h, w)
        new = (int(h * scale + 0.5), int(w * scale + 0.5))
        x = torch.from_numpy(to_rgb(img, channels)).permute(2, 0, 1)[None].to(device)
        x = F.interpolate(x, new, mode="bilinear", align_corners=False, antialias=True)
        with torch.no_grad():
            out.append((sam.image_encoder(sam.preprocess(x)), new, (h, w)))
    return out


def label_boxes(label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label ids (n,) and their cells' inclusive xyxy boxes (n, 4) float64, for box prompts."""
    from scipy import ndimage

    ids = np.unique(label)
    ids = ids[ids > 0]
    slices = ndimage.find_objects(label.astype(np.int64))
    boxes = np.array([[slices[i - 1][1].start, slices[i - 1][0].start,
                       slices[i - 1][1].stop - 1, slices[i - 1][0].stop - 1] for i in ids],
                     dtype=np.float64).reshape(-1, 4)
    return ids, boxes


def dense_pe(sam):
    """The prompt encoder's dense positional encoding (1, C, h, w): a constant of the model.

    Computed again only when its random buffer moves or is loaded; it costs tens of
    milliseconds, a noticeable share of a decoder pass on a CPU.
    """
    import torch

    buf = sam.prompt_encoder.pe_layer.positional_encoding_gaussian_matrix
    key = (str(buf.device), buf.data_ptr(), buf._version)  # load_state_dict bumps _version
    cached = getattr(sam.prompt_encoder, "_dense_pe_cache", None)
    if cached is None or cached[0] != key:
        with torch.no_grad():
            cached = (key, sam.prompt_encoder.get_dense_pe())
        sam.prompt_encoder._dense_pe_cache = cached
    return cached[1]


def decode(sam, embedding, input_size, original, *, boxes=None, points=None, labels=None,
            multimask=False, low_res=False):
    """Decoder logits for a batch of prompts given in original pixel coordinates."""
    import torch

    scale = sam.image_encoder.img_size / max(original)
    dev = embedding.device
    box_t = None if boxes is None else torch.as_tensor(boxes * scale, dtype=torch.float32,
                                                       device=dev)
    pts = None
    if points is not None:
        pts = (torch.as_tensor(points * scale, dtype=torch.float32, device=dev),
               torch.as_tensor(labels, dtype=torch.int64, device=dev))
    sparse, dense = sam.prompt_encoder(points=pts, boxes=box_t, masks=None)
    logits, iou = sam.mask_decoder(image_embeddings=embedding,
                                   image_pe=dense_pe(sam),
                                   sparse_prompt_embeddings=sparse,
                                   dense_prompt_embeddings=dense, multimask_output=multimask)
    if low_res:
        return logits, iou
    return sam.postprocess_masks(logits, input_size, original), iou
