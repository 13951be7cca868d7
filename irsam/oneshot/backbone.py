# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""SAM backbones for the one-shot mode: an encoder (256×64×64 embeddings) plus SAM's prompt
encoder and mask decoder, with SAM's longest-side resize, normalisation, padding and
postprocessing: :class:`SamModelBackbone` (MobileSAM or SAM ViT-B/L/H built by
``irsam.models.build_prompt_sam``), :class:`IrsamEncoderBackbone` (an IRSAM encoder with
MobileSAM's decoder, ``irsam_ppcf=mobile_sam``) and :class:`IrsamBackbone` (a whole IRSAM
network, no SAM weights, ``irsam_ppcf=irsam``).
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from segment_anything.modeling import Sam
from torch import nn

from irsam.metrics import label_components
from irsam.utils.errors import ConfigError

Precision = Literal["32", "bf16"]
Prompt = tuple[float, ...]
"""A prompt in crop pixels: (x, y) for a point, (x1, y1, x2, y2) for a box (corners included)."""


@runtime_checkable
class SamBackbone(Protocol):
    """What the one-shot segmenter needs from a promptable SAM.

    Attributes:
      img_size (int): side S of the square encoder input (1024 for SAM and MobileSAM).
      grid_size (int): side g of the embedding grid (64 for SAM and MobileSAM).
      pixel_mean (torch.Tensor): 3, RGB mean on the 0–255 scale.
      pixel_std (torch.Tensor): 3, RGB std on the 0–255 scale.
    """

    img_size: int
    grid_size: int
    pixel_mean: torch.Tensor
    pixel_std: torch.Tensor

    def preprocess(
        self, images: torch.Tensor, size: int | None = None, resize_backend: str = "torch"
    ) -> tuple[torch.Tensor, tuple[int, int]]:
        """B×3×h×w float RGB 0–255 → (B×3×s×s normalised and padded, resized (h', w')); s is
        ``size`` or S."""

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """B×3×s×s normalised → B×C×(s/16)×(s/16) float32 embeddings."""

    def segment_crops(
        self,
        crops: list[torch.Tensor],
        prompts: list[list[Prompt]],
        chunk_size: int,
        resize_backend: str = "torch",
        size: int | None = None,
    ) -> list[list[torch.Tensor]]:
        """Segment each crop (3×h×w float RGB 0–255, sizes may differ) around each of its prompts:
        (x, y) points or (x1, y1, x2, y2) boxes in crop pixels, encoding at input side ``size``
        (None: S). Returns one h×w bool mask per prompt, grouped per crop."""


def resized_hw(height: int, width: int, long_side: int) -> tuple[int, int]:
    """SAM's ``ResizeLongestSide.get_preprocess_shape``: long side → ``long_side``, short side
    rounded half-up.

    Arguments:
      height (int): input rows.
      width (int): input columns.
      long_side (int): target length of the longer side.
    Returns:
      tuple[int, int]: (new height, new width).
    """
    scale = long_side / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def resize_images(images: torch.Tensor, new_hw: tuple[int, int], backend: str) -> torch.Tensor:
    """Bilinear resize of a batch of 0–255 images (docs/oneshot.md, "Resizing").

    Arguments:
      images (torch.Tensor): B×C×h×w float, values in [0, 255].
      new_hw (tuple[int, int]): output size (h', w').
      backend (str): ``torch`` (float bilinear, ``align_corners=False``, antialiased when
        shrinking) or ``pil`` (the authors' path: each image rounded to 8 bits and resized by
        PIL's bilinear filter, so the output holds integers).
    Returns:
      torch.Tensor: B×C×h'×w' float32 on the input's device.
    """
    if backend == "torch":
        return F.interpolate(
            images.float(), size=new_hw, mode="bilinear", align_corners=False, antialias=True
        )
    if backend != "pil":
        raise ConfigError(f"oneshot.resize_backend={backend!r} is not one of ('torch', 'pil').")
    from PIL import Image

    pixels = images.detach().float().round().clamp(0, 255).to(torch.uint8).cpu().numpy()
    out = np.empty((*pixels.shape[:2], *new_hw), dtype=np.uint8)
    for b, image in enumerate(pixels):
        for c, channel in enumerate(image):  # PIL's RGB bilinear filter works per channel
            resized = Image.fromarray(channel).resize(new_hw[::-1], Image.Resampling.BILINEAR)
            out[b, c] = np.asarray(resized)
    return torch.from_numpy(out).float().to(images.device)


def unpad_resize(
    maps: torch.Tensor, side: int, input_hw: tuple[int, int], orig_hw: tuple[int, int]
) -> torch.Tensor:
    """SAM's ``postprocess_masks`` for any input side s: bilinear to s×s, padding cut off,
    bilinear to the original size.

    Arguments:
      maps (torch.Tensor): B×C×m×m maps on the encoder grid or the decoder's 4× grid.
      side (int): encoder input side s.
      input_hw (tuple[int, int]): resized size before padding (from ``preprocess``).
      orig_hw (tuple[int, int]): original image size (h, w).
    Returns:
      torch.Tensor: B×C×h×w maps.
    """
    up = F.interpolate(maps, (side, side), mode="bilinear", align_corners=False)
    up = up[..., : input_hw[0], : input_hw[1]]
    return F.interpolate(up, tuple(orig_hw), mode="bilinear", align_corners=False)


def encode_images(
    backbone: SamBackbone,
    images: list[torch.Tensor],
    chunk_size: int,
    *,
    size: int | None = None,
    resize_backend: str = "torch",
) -> tuple[list[torch.Tensor], list[tuple[int, int]]]:
    """Preprocess images of any sizes and encode them in chunks.

    Arguments:
      backbone (SamBackbone): the backbone.
      images (list[torch.Tensor]): 3×h×w float RGB 0–255 images (sizes may differ).
      chunk_size (int): images per encoder call.
      size (int | None): encoder input side s (None: the backbone's S).
      resize_backend (str): ``torch`` or ``pil`` (see :func:`resize_images`).
    Returns:
      tuple[list[torch.Tensor], list[tuple[int, int]]]: 1×C×g×g embeddings (g = s/16) and the
      resized (h', w') of each image.
    """
    embeddings: list[torch.Tensor] = []
    input_hws: list[tuple[int, int]] = []
    for start in range(0, len(images), chunk_size):
        batch = [
            backbone.preprocess(img[None], size, resize_backend)
            for img in images[start : start + chunk_size]
        ]
        feats = backbone.encode(torch.cat([x for x, _ in batch]))
        embeddings.extend(feats.split(1))
        input_hws.extend(hw for _, hw in batch)
    return embeddings, input_hws


class EncoderBackboneBase(nn.Module, metaclass=abc.ABCMeta):
    """SAM-style preprocessing and the encoder forward shared by every one-shot backbone.

    Subclasses implement ``_normaliser`` (the module with SAM's ``pixel_mean`` / ``pixel_std``
    buffers) and ``segment_crops``.

    Arguments:
      encoder (nn.Module): image encoder, B×3×S×S → B×C×g×g or a tuple starting with that (as
        IRSAM's ``(deep, shallow)``).
      img_size (int): side S of the square encoder input.
      grid_size (int): side g of the embedding grid.
      precision (str): ``"32"`` or ``"bf16"`` (autocast of the encoder forward).
      compile (bool): ``torch.compile`` the image encoder.
    """

    mask_threshold: float = 0.0
    image_format: str = "RGB"

    def __init__(
        self,
        encoder: nn.Module,
        *,
        img_size: int,
        grid_size: int,
        precision: Precision = "32",
        compile: bool = False,
    ):
        super().__init__()
        if str(precision) not in ("32", "bf16"):
            raise ConfigError(f"precision={precision!r} must be 32 or bf16.")
        self.precision = str(precision)
        self.img_size = int(img_size)
        self.grid_size = int(grid_size)
        self.encoder: nn.Module = torch.compile(encoder) if compile else encoder

    @abc.abstractmethod
    def _normaliser(self) -> nn.Module:
        """The module whose ``pixel_mean`` / ``pixel_std`` buffers normalise inputs (subclasses)."""

    @property
    def pixel_mean(self) -> torch.Tensor:
        """3, RGB mean on the 0–255 scale."""
        return self._normaliser().pixel_mean.view(3)

    @property
    def pixel_std(self) -> torch.Tensor:
        """3, RGB std on the 0–255 scale."""
        return self._normaliser().pixel_std.view(3)

    @property
    def device(self) -> torch.device:
        """The device holding the weights."""
        return self.pixel_mean.device

    def preprocess(
        self, images: torch.Tensor, size: int | None = None, resize_backend: str = "torch"
    ) -> tuple[torch.Tensor, tuple[int, int]]:
        """Resize the longest side to the input side (bilinear), normalise with the SAM
        mean/std and zero-pad bottom/right.

        Arguments:
          images (torch.Tensor): B×3×h×w float32, RGB, 0–255 scale (one size per call).
          size (int | None): input side s; None = ``img_size`` (the fast mode passes a smaller
            one, see docs/oneshot.md, "Fast mode").
          resize_backend (str): ``torch`` or ``pil`` (see :func:`resize_images`).
        Returns:
          tuple[torch.Tensor, tuple[int, int]]: B×3×s×s normalised input, and the resized
          (h', w') before padding.
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"expected B×3×h×w RGB images, got shape {tuple(images.shape)}: give a batch of "
                "3-channel images (repeat a grey image over 3 channels)"
            )
        side = self.img_size if size is None else int(size)
        h, w = images.shape[-2:]
        new_hw = resized_hw(h, w, side)
        x = images.float()
        if (h, w) != new_hw:
            x = resize_images(x, new_hw, resize_backend)
        x = (x - self.pixel_mean.view(1, 3, 1, 1)) / self.pixel_std.view(1, 3, 1, 1)
        x = F.pad(x, (0, side - new_hw[1], 0, side - new_hw[0]))
        return x, new_hw

    @contextlib.contextmanager
    def _autocast(self) -> Iterator[None]:
        """Autocast context for the encoder forward (a no-op at 32-bit precision)."""
        if self.precision == "bf16":
            with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16):
                yield
        else:
            yield

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        """Raw encoder forward: B×3×S×S → B×C×g×g (the first output of a tuple)."""
        out = self.encoder(x)
        return out[0] if isinstance(out, (tuple, list)) else out

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Encode a batch.

        Arguments:
          x (torch.Tensor): B×3×S×S normalised input (see :meth:`preprocess`).
        Returns:
          torch.Tensor: B×C×g×g float32 embeddings (C = 256 for SAM-family encoders).
        """
        with self._autocast():
            features = self._encode(x.to(self.device))
        return features.float()


class SamModelBackbone(EncoderBackboneBase):
    """A promptable SAM (MobileSAM, SAM ViT-B/L/H): its encoder, or ``encoder``, for LFM and
    the crops; its prompt encoder and mask decoder for PPCF.

    Arguments:
      prompt_sam (Sam): provides ``prompt_encoder``, ``mask_decoder``, ``pixel_mean``,
        ``pixel_std``, the input size (``image_encoder.img_size``) and by default the encoder
        (``image_encoder(x)`` returns B×256×g×g).
      encoder (nn.Module | None): another image encoder on the same g×g grid (None: SAM's).
      precision (str): ``"32"`` or ``"bf16"`` (autocast of the encoder forward).
      compile (bool): ``torch.compile`` the image encoder.
    """

    def __init__(
        self,
        prompt_sam: Sam,
        *,
        encoder: nn.Module | None = None,
        precision: Precision = "32",
        compile: bool = False,
    ):
        super().__init__(
            prompt_sam.image_encoder if encoder is None else encoder,
            img_size=int(prompt_sam.image_encoder.img_size),
            grid_size=int(prompt_sam.prompt_encoder.image_embedding_size[0]),
            precision=precision,
            compile=compile,
        )
        self.prompt_sam = prompt_sam

    def _normaliser(self) -> nn.Module:
        """The SAM holding ``pixel_mean`` / ``pixel_std``."""
        return self.prompt_sam

    def segment_crops(
        self,
        crops: list[torch.Tensor],
        prompts: list[list[Prompt]],
        chunk_size: int,
        resize_backend: str = "torch",
        size: int | None = None,
    ) -> list[list[torch.Tensor]]:
        """Encode the crops in chunks, then decode every prompt with SAM's mask decoder.

        Arguments:
          crops (list[torch.Tensor]): 3×h×w float RGB 0–255 crops (sizes may differ).
          prompts (list[list[Prompt]]): per crop, (x, y) points and (x1, y1, x2, y2) boxes in
            crop pixels.
          chunk_size (int): crops per encoder call.
          resize_backend (str): ``torch`` or ``pil`` resize of the crops to the input side.
          size (int | None): encoder input side s (None: S). A smaller s [ours, fast mode]
            decodes on the (s/16)² grid with the matching dense positional encoding.
        Returns:
          list[list[torch.Tensor]]: per crop, one h×w bool mask per prompt (logit >
          ``mask_threshold``).
        """
        embeddings, input_hws = encode_images(
            self, crops, chunk_size, size=size, resize_backend=resize_backend
        )
        decode = {2: self.decode_point, 4: self.decode_box}  # by prompt length
        masks = []
        for crop, emb, in_hw, crop_prompts in zip(crops, embeddings, input_hws, prompts):
            crop_hw = (int(crop.shape[1]), int(crop.shape[2]))
            logits = [decode[len(p)](emb, tuple(p), in_hw, crop_hw) for p in crop_prompts]
            masks.append([crop_logits > self.mask_threshold for crop_logits in logits])
        return masks

    def _input_side(self, embedding: torch.Tensor) -> int:
        """The encoder input side s that produced an embedding (s = 16 · grid for SAM)."""
        return int(embedding.shape[-1]) * self.img_size // self.grid_size

    def _decode(
        self,
        embedding: torch.Tensor,
        prompt: Prompt,
        input_hw: tuple[int, int],
        orig_hw: tuple[int, int],
    ) -> torch.Tensor:
        """Prompt encoder + mask decoder (one mask) + postprocessing of one prompt → h×w logits."""
        # The prompt's pixels are mapped as SAM's apply_coords; an input of side s < S (read off the
        # embedding, fast mode) is expressed on the S scale (× S/s), so the prompt encoder's
        # normalisation by S gives the same position. Such an embedding gets the positional
        # encoding of its own grid, and its logits are upsampled to its own side.
        side = self._input_side(embedding)
        xy = torch.tensor(prompt, dtype=torch.float32, device=self.device).view(-1, 2)
        scale = torch.tensor(
            [input_hw[1] / orig_hw[1], input_hw[0] / orig_hw[0]], device=self.device
        )
        xy = xy * scale * (self.img_size / side)
        labels = torch.ones(1, 1, dtype=torch.int, device=self.device)
        points = (xy.view(1, 1, 2), labels) if len(prompt) == 2 else None
        boxes = xy.view(1, 4) if len(prompt) == 4 else None
        prompt_encoder = self.prompt_sam.prompt_encoder
        sparse, dense = prompt_encoder(points=points, boxes=boxes, masks=None)
        grid = tuple(int(v) for v in embedding.shape[-2:])
        if grid == tuple(prompt_encoder.image_embedding_size):
            image_pe = prompt_encoder.get_dense_pe()
        else:
            image_pe = prompt_encoder.pe_layer(grid).unsqueeze(0)
            dense = dense[:, :, :1, :1].expand(-1, -1, *grid)  # the no-mask embedding, per cell
        low_res, _ = self.prompt_sam.mask_decoder(
            image_embeddings=embedding.to(self.device).float(),
            image_pe=image_pe,
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=False,
        )
        return unpad_resize(low_res, side, input_hw, orig_hw)[0, 0]

    def decode_point(
        self,
        embedding: torch.Tensor,
        point_xy: tuple[float, float],
        input_hw: tuple[int, int],
        orig_hw: tuple[int, int],
    ) -> torch.Tensor:
        """Decode one positive point prompt (``multimask_output=False``, as ``SamPredictor``).

        Arguments:
          embedding (torch.Tensor): 1×C×g×g embedding of the image.
          point_xy (tuple[float, float]): (x, y) = (column, row) in original image pixels.
          input_hw (tuple[int, int]): resized size before padding (from :meth:`preprocess`).
          orig_hw (tuple[int, int]): original image size (h, w).
        Returns:
          torch.Tensor: orig_h×orig_w float32 logits (foreground iff > 0).
        """
        return self._decode(embedding, point_xy, input_hw, orig_hw)

    def decode_box(
        self,
        embedding: torch.Tensor,
        box_xyxy: tuple[float, float, float, float],
        input_hw: tuple[int, int],
        orig_hw: tuple[int, int],
    ) -> torch.Tensor:
        """Decode one box prompt (``multimask_output=False``).

        Arguments:
          embedding (torch.Tensor): 1×C×g×g embedding of the image.
          box_xyxy (tuple[float, float, float, float]): (x1, y1, x2, y2) in original pixels.
          input_hw (tuple[int, int]): resized size before padding.
          orig_hw (tuple[int, int]): original image size (h, w).
        Returns:
          torch.Tensor: orig_h×orig_w float32 logits (foreground iff > 0).
        """
        return self._decode(embedding, box_xyxy, input_hw, orig_hw)


class IrsamEncoderBackbone(SamModelBackbone):
    """IRSAM's encoder for LFM, MobileSAM's prompt encoder and decoder for PPCF (``encoder=irsam``).

    The one-shot preprocessing (aspect-preserving resize to S plus padding) is kept, not IRSAM's
    training-time resize. The encoder must produce the decoder's g×g grid.

    Arguments:
      encoder (nn.Module): IRSAM image encoder; returns ``(deep B×256×g×g, shallow)`` or a tensor.
      prompt_sam (Sam): the MobileSAM providing the prompt encoder, mask decoder and SAM
        normalisation.
      precision (str): ``"32"`` or ``"bf16"`` encoder autocast.
      compile (bool): ``torch.compile`` the IRSAM encoder.
    """

    def __init__(
        self,
        encoder: nn.Module,
        prompt_sam: Sam,
        *,
        precision: Precision = "32",
        compile: bool = False,
    ):
        super().__init__(prompt_sam, encoder=encoder, precision=precision, compile=compile)

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        """B×3×S×S → deep B×C×g×g embedding of the IRSAM encoder, checked against the grid."""
        deep = super()._encode(x)
        expected = x.shape[-1] * self.grid_size // self.img_size
        if deep.shape[-1] != expected:
            raise ConfigError(
                f"IRSAM encoder gives a {deep.shape[-1]}² grid for {x.shape[-1]}² inputs but the "
                f"prompt decoder expects {expected}²; use an encoder built for {self.img_size}² "
                "inputs."
            )
        return deep


def select_components(mask: torch.Tensor, prompt: Prompt, point_radius: float) -> torch.Tensor:
    """The 8-connected components of a mask that a prompt selects.

    A point selects the component containing it, or else every component with a pixel within
    ``point_radius`` of it; a box selects every component with a pixel inside it.

    Arguments:
      mask (torch.Tensor): h×w bool mask.
      prompt (Prompt): (x, y) point or (x1, y1, x2, y2) box (corners included), mask pixels.
      point_radius (float): largest point-to-component distance in pixels.
    Returns:
      torch.Tensor: h×w bool mask of the selected components (empty when none).
    """
    labels, count = label_components(mask.cpu().numpy())
    if count == 0:
        return torch.zeros_like(mask)
    if len(prompt) == 4:
        x1, y1, x2, y2 = (round(v) for v in prompt)
        keep = np.unique(labels[max(y1, 0) : y2 + 1, max(x1, 0) : x2 + 1])
    else:
        col, row = round(prompt[0]), round(prompt[1])
        height, width = labels.shape
        inside = labels[row, col] if 0 <= row < height and 0 <= col < width else 0
        if inside:
            keep = np.array([inside])
        else:
            rows, cols = np.nonzero(labels)
            near = np.hypot(rows - row, cols - col) <= point_radius
            keep = np.unique(labels[rows[near], cols[near]])
    return torch.from_numpy(np.isin(labels, keep[keep > 0])).to(mask.device)


class IrsamBackbone(EncoderBackboneBase):
    """A complete IRSAM network trained by this framework, no SAM weights (``irsam_ppcf=irsam``).

    LFM uses the deep embedding of IRSAM's encoder on SAM-style (aspect-preserving, padded)
    inputs of its internal size. PPCF runs the whole prompt-free network on each crop and keeps
    the 8-connected components the prompt selects (:func:`select_components`).

    Arguments:
      net (nn.Module): an ``irsam.models.IRSAM`` (``img_size``, ``pixel_mean``/``pixel_std``
        3×1×1, ``image_encoder`` returning ``(deep, shallow)``, ``forward`` → ``mask_logits``).
      precision (str): ``"32"`` or ``"bf16"`` (autocast of encoder and network forwards).
      compile (bool): ``torch.compile`` the image encoder.
      point_radius (float): largest distance in crop pixels from a point prompt to the selected
        component when no component contains the point.
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        precision: Precision = "32",
        compile: bool = False,
        point_radius: float = 3.0,
    ):
        super().__init__(
            net.image_encoder,
            img_size=net.img_size,
            grid_size=net.img_size // 16,
            precision=precision,
            compile=compile,
        )
        self.net = net
        self.point_radius = float(point_radius)

    def _normaliser(self) -> nn.Module:
        """The IRSAM network holding ``pixel_mean`` / ``pixel_std``."""
        return self.net

    def segment_crops(
        self,
        crops: list[torch.Tensor],
        prompts: list[list[Prompt]],
        chunk_size: int,
        resize_backend: str = "torch",
        size: int | None = None,
    ) -> list[list[torch.Tensor]]:
        """Run IRSAM on the crops (batched per crop size), then select components per prompt.

        A crop no larger than the network's input side S is placed at native scale in the
        top-left corner of an S×S canvas filled with the crop's mean colour, and the logits of
        that corner are kept: resizing a 42–64 px crop up to S would enlarge its targets 4–6×,
        beyond the sizes IRSAM was trained on (it then finds none). Larger crops are resized by
        the network as usual.

        Arguments:
          crops, prompts: as :meth:`SamModelBackbone.segment_crops` (3×h×w crops).
          chunk_size (int): crops per network call.
          resize_backend, size: unused (the IRSAM network resizes to its own input size).
        Returns:
          list[list[torch.Tensor]]: per crop, one h×w bool mask per prompt.
        """
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, crop in enumerate(crops):
            by_size.setdefault((int(crop.shape[1]), int(crop.shape[2])), []).append(i)
        masks: list[list[torch.Tensor]] = [[] for _ in crops]
        side = self.img_size
        for (height, width), indices in by_size.items():
            for start in range(0, len(indices), chunk_size):
                chunk = indices[start : start + chunk_size]
                batch = torch.stack([crops[i] for i in chunk]).float().to(self.device)
                native = height <= side and width <= side
                if native:  # keep the crop's scale: IRSAM is trained on targets of native size
                    canvas = batch.mean(dim=(2, 3), keepdim=True).expand(-1, -1, side, side)
                    canvas = canvas.clone()
                    canvas[:, :, :height, :width] = batch
                    batch = canvas
                with self._autocast():
                    logits = self.net(batch)["mask_logits"][:, 0].float()
                logits = logits[:, :height, :width] if native else logits
                for i, crop_logits in zip(chunk, logits):
                    crop_mask = crop_logits > self.mask_threshold
                    masks[i] = [
                        select_components(crop_mask, prompt, self.point_radius)
                        for prompt in prompts[i]
                    ]
        return masks


MOBILE_SAM_URL = "https://github.com/ChaoningZhang/MobileSAM"
SAM_URL = "https://github.com/facebookresearch/segment-anything#model-checkpoints"
ENCODER_KINDS = ("tiny", "vit_b", "vit_l", "vit_h", "irsam", "debug")


def build_debug_sam(
    *,
    img_size: int = 256,
    patch_size: int = 16,
    embed_dim: int = 32,
    depth: int = 1,
    out_chans: int = 32,
) -> Sam:
    """A tiny, randomly initialised segment-anything ``Sam`` for tests and demos (no weights).

    Arguments:
      img_size (int): encoder input side S, a multiple of ``patch_size``.
      patch_size (int): ViT patch side; the grid is g = S / patch_size (SAM: 16).
      embed_dim (int): ViT width.
      depth (int): number of ViT blocks.
      out_chans (int): embedding channels C (also the prompt/decoder width; SAM uses 256).
    Returns:
      Sam: a promptable SAM with a C×g×g embedding, in eval mode.
    """
    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        TwoWayTransformer,
    )

    if img_size % patch_size:
        raise ConfigError(
            f"the debug SAM needs an input side divisible by patch_size={patch_size} "
            f"(backbone.encoder_size), got {img_size}"
        )
    grid = img_size // patch_size
    encoder = ImageEncoderViT(
        img_size=img_size,
        patch_size=patch_size,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=1,
        global_attn_indexes=(),
        window_size=0,
        out_chans=out_chans,
        use_rel_pos=False,
    )
    prompt_encoder = PromptEncoder(
        embed_dim=out_chans,
        image_embedding_size=(grid, grid),
        input_image_size=(img_size, img_size),
        mask_in_chans=16,
    )
    decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(
            depth=1, embedding_dim=out_chans, mlp_dim=out_chans, num_heads=2
        ),
        transformer_dim=out_chans,
        iou_head_depth=1,
        iou_head_hidden_dim=16,
    )
    return Sam(image_encoder=encoder, prompt_encoder=prompt_encoder, mask_decoder=decoder).eval()


def _prompt_sam(encoder: str, checkpoint: str | None, encoder_size: int) -> Sam:
    """``irsam.models.build_prompt_sam`` (imported lazily)."""
    from irsam.models import build_prompt_sam

    return build_prompt_sam(encoder=encoder, checkpoint=checkpoint, encoder_size=encoder_size)


def _load_irsam_net(irsam_checkpoint: str) -> nn.Module:
    """The IRSAM network of a ``train.py`` checkpoint (rebuilt from its config, weights only)."""
    from irsam.lit_module import IRSAMLitModule

    return IRSAMLitModule.from_checkpoint(irsam_checkpoint).net


IRSAM_PPCF_KINDS = ("irsam", "mobile_sam")


def build_backbone(
    *,
    encoder: str = "tiny",
    checkpoint: str | None = None,
    allow_random_weights: bool = False,
    irsam_checkpoint: str | None = None,
    irsam_ppcf: str = "irsam",
    point_radius: float = 3.0,
    device: str = "auto",
    precision: Precision = "32",
    compile: bool = False,
    seed: int = 0,
    encoder_size: int = 1024,
) -> EncoderBackboneBase:
    """Build the one-shot backbone from the ``backbone:`` config block.

    Arguments:
      encoder (str): ``tiny`` (MobileSAM, the paper's backbone), ``vit_b``/``vit_l``/``vit_h``
        (SAM), ``irsam`` (an IRSAM checkpoint trained by this framework, see ``irsam_ppcf``) or
        ``debug`` (a tiny random SAM for tests; needs ``allow_random_weights``).
      checkpoint (str | None): ``mobile_sam.pt`` / ``sam_vit_*.pth``. None only together with
        ``allow_random_weights``, or with ``encoder=irsam, irsam_ppcf=irsam`` (no SAM used).
      allow_random_weights (bool): permit random initialisation (tests and demos only; the
        output is meaningless).
      irsam_checkpoint (str | None): IRSAM checkpoint for ``encoder=irsam``.
      irsam_ppcf (str): ``encoder=irsam`` only: ``irsam`` (PPCF with IRSAM's own prompt-free
        decoder) or ``mobile_sam`` (MobileSAM's point-prompted decoder from ``checkpoint``).
      point_radius (float): ``irsam_ppcf=irsam``: pixels between a point prompt and the
        component it may select.
      device (str): ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1``, ...
      precision (str): ``"32"`` or ``"bf16"``.
      compile (bool): ``torch.compile`` the encoder.
      seed (int): seed of the random initialisation (random weights only).
      encoder_size (int): encoder input side S of ``tiny``, ``vit_*``, ``debug`` and of the
        MobileSAM of ``irsam_ppcf=mobile_sam`` (1024, the checkpoints' native size; smaller values
        only for tests and ``debug``: the weights load, the features differ).
    Returns:
      EncoderBackboneBase: the backbone in eval mode on ``device``, every parameter frozen.
    """
    if encoder not in ENCODER_KINDS:
        raise ConfigError(f"backbone.encoder={encoder!r} is not one of {ENCODER_KINDS}.")
    if irsam_ppcf not in IRSAM_PPCF_KINDS:
        raise ConfigError(f"backbone.irsam_ppcf={irsam_ppcf!r} is not one of {IRSAM_PPCF_KINDS}.")
    if encoder == "irsam" and irsam_checkpoint is None:
        raise ConfigError(
            "backbone.encoder=irsam needs backbone.irsam_checkpoint=<IRSAM checkpoint trained with "
            "train.py, e.g. <run>/checkpoints/last.ckpt>."
        )
    standalone_irsam = encoder == "irsam" and irsam_ppcf == "irsam"
    if checkpoint is None and not allow_random_weights and not standalone_irsam:
        url = MOBILE_SAM_URL if encoder in ("tiny", "irsam") else SAM_URL
        name = "mobile_sam.pt" if encoder in ("tiny", "irsam") else f"sam_{encoder}_*.pth"
        raise ConfigError(
            f"backbone.checkpoint is not set. The one-shot mode needs pretrained weights: download "
            f"{name} from {url} and pass backbone.checkpoint=/path/to/{name}. "
            "(backbone.allow_random_weights=true runs with random weights, for tests only.)"
        )
    backbone: EncoderBackboneBase
    encoder_args: dict[str, Any] = {"precision": precision, "compile": compile}
    if standalone_irsam:
        net = _load_irsam_net(irsam_checkpoint)
        backbone = IrsamBackbone(net, point_radius=point_radius, **encoder_args)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if encoder == "debug":
                sam = build_debug_sam(img_size=encoder_size)
            else:
                sam = _prompt_sam(
                    "tiny" if encoder == "irsam" else encoder, checkpoint, encoder_size
                )
        if encoder == "irsam":
            irsam_encoder = _load_irsam_net(irsam_checkpoint).image_encoder
            backbone = IrsamEncoderBackbone(irsam_encoder, sam, **encoder_args)
        else:
            backbone = SamModelBackbone(sam, **encoder_args)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return backbone.to(device).eval().requires_grad_(False)
