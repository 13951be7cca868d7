# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Local feature matching (LFM): reference prototypes, tiling, similarity, stitching, peaks.

Pure tensor functions; the segmenter (:mod:`irsam.oneshot.segmenter`) chains them. Shapes use
H×W for a frame, L for a (square) window side, s for the tile stride, g for the embedding grid
side and S for the encoder input side.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from skimage.feature import peak_local_max

from irsam.metrics import label_components
from irsam.oneshot.backbone import resize_images, resized_hw
from irsam.utils.errors import ConfigError


def even(value: int) -> int:
    """Round down to an even integer.

    Arguments:
      value (int): a non-negative integer.
    Returns:
      int: ``value`` minus its parity.
    """
    return int(value) - int(value) % 2


def window_sizes(
    height: int, width: int, divisors: tuple[int, ...], window_from: str = "height"
) -> list[int]:
    """TLE window sizes ``even(base // d)``.

    Arguments:
      height (int): reference frame rows H.
      width (int): reference frame columns W.
      divisors (tuple[int, ...]): e.g. (6, 5, 4) (code) or (2, 3, 4) (paper).
      window_from (str): ``height`` (code: base = H) or ``min_side`` (base = min(H, W)).
    Returns:
      list[int]: one even window side L per divisor, in the order of ``divisors``.
    """
    base = height if window_from == "height" else min(height, width)
    sizes = [even(base // d) for d in divisors]
    if min(sizes) < 2:
        raise ConfigError(
            f"frame {height}×{width} is too small for window_divisors={tuple(divisors)}: "
            f"window sizes {sizes} must be ≥ 2 px."
        )
    return sizes


def tile_stride(window: int, overlap: float) -> int:
    """Tile stride ``int((1 - overlap) · L)``, at least 1.

    Arguments:
      window (int): window side L.
      overlap (float): overlap fraction in [0, 1).
    Returns:
      int: the stride s in pixels.
    """
    return max(1, int((1.0 - overlap) * window))


def tile_grid(height: int, width: int, stride: int) -> tuple[int, int]:
    """Number of tile rows and columns: origins ``range(0, H, s) × range(0, W, s)``.

    Arguments:
      height (int): frame rows H.
      width (int): frame columns W.
      stride (int): tile stride s.
    Returns:
      tuple[int, int]: (ceil(H / s), ceil(W / s)).
    """
    return math.ceil(height / stride), math.ceil(width / stride)


def cut_tiles(frame: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """Cut a frame into L×L tiles at origins ``range(0, H, s) × range(0, W, s)``.

    Tiles crossing the bottom/right border are zero-padded in raw pixel space (black).

    Arguments:
      frame (torch.Tensor): C×H×W (float, any range).
      window (int): tile side L.
      stride (int): tile stride s.
    Returns:
      torch.Tensor: N×C×L×L tiles in raster order of their origins, N = rows · cols of
      :func:`tile_grid`.
    """
    channels, height, width = frame.shape
    rows, cols = tile_grid(height, width, stride)
    canvas_h, canvas_w = (rows - 1) * stride + window, (cols - 1) * stride + window
    canvas = F.pad(frame, (0, canvas_w - width, 0, canvas_h - height))
    patches = F.unfold(canvas[None], kernel_size=window, stride=stride)  # 1×(C·L·L)×N
    return patches[0].T.reshape(-1, channels, window, window)


def stitch_maps(maps: torch.Tensor, hw: tuple[int, int], window: int, stride: int) -> torch.Tensor:
    """Reassemble per-tile maps into a full-frame map, averaging overlaps (one ``F.fold``).

    Arguments:
      maps (torch.Tensor): N×L×L per-tile maps in the order of :func:`cut_tiles`.
      hw (tuple[int, int]): frame size (H, W).
      window (int): tile side L.
      stride (int): tile stride s.
    Returns:
      torch.Tensor: H×W map; each pixel is the mean over the tiles covering it (the padded parts
      of border tiles fall outside the frame and are dropped).
    """
    height, width = hw
    rows, cols = tile_grid(height, width, stride)
    if tuple(maps.shape) != (rows * cols, window, window):
        raise ValueError(
            f"expected {rows * cols}×{window}×{window} tile maps for a {height}×{width} frame, "
            f"got {tuple(maps.shape)}: give the maps of cut_tiles(frame, {window}, {stride})"
        )
    canvas = ((rows - 1) * stride + window, (cols - 1) * stride + window)
    columns = maps.reshape(rows * cols, window * window).T[None].float()
    total = F.fold(columns, output_size=canvas, kernel_size=window, stride=stride)
    count = F.fold(torch.ones_like(columns), output_size=canvas, kernel_size=window, stride=stride)
    return (total / count.clamp_min(1.0))[0, 0, :height, :width]


def interp_matrix(
    size_in: int, sizes: list[int], device: torch.device | None = None
) -> torch.Tensor:
    """The 1-D linear map of a chain of bilinear resizes (``align_corners=False``).

    Bilinear resizing is separable, so resizing a g×g map through ``sizes`` equals
    ``A @ map @ A.T`` with this matrix A, without materialising the intermediate maps.

    Arguments:
      size_in (int): input length g.
      sizes (list[int]): successive output lengths, e.g. [2g, S, L].
      device (torch.device | None): device of the result.
    Returns:
      torch.Tensor: sizes[-1]×size_in float32 matrix.
    """
    signal = torch.eye(size_in, device=device)[:, None, :]  # size_in signals of length size_in
    for size in sizes:
        signal = F.interpolate(signal, size=size, mode="linear", align_corners=False)
    return signal[:, 0, :].T.contiguous()


def similarity_maps(features: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every embedding location with the prototypes (max over shots).

    Arguments:
      features (torch.Tensor): N×C×g×g embeddings.
      prototypes (torch.Tensor): P×C L2-normalised prototypes of one window size (P shots).
    Returns:
      torch.Tensor: N×g×g similarities in [-1, 1].
    """
    normed = F.normalize(features.float(), dim=1, eps=1e-12)
    return torch.einsum("nchw,pc->nphw", normed, prototypes.float()).amax(dim=1)


def upsample_similarity(sim: torch.Tensor, img_size: int, window: int) -> torch.Tensor:
    """Upsample g×g similarity maps to the tile size like the authors' chain
    (bilinear ×2 → S×S → L×L, ``align_corners=False``), computed with :func:`interp_matrix`.

    Arguments:
      sim (torch.Tensor): N×g×g maps.
      img_size (int): encoder input side S.
      window (int): tile side L.
    Returns:
      torch.Tensor: N×L×L maps.
    """
    grid = sim.shape[-1]
    matrix = interp_matrix(grid, [2 * grid, img_size, window], device=sim.device)
    return torch.einsum("ij,njk,lk->nil", matrix, sim.float(), matrix)


def window_box(
    centre_yx: tuple[int, int], window: int, hw: tuple[int, int]
) -> tuple[int, int, int, int]:
    """Rows [y − L/2, y + L/2) and columns [x − L/2, x + L/2) clipped to the frame (no padding).

    Arguments:
      centre_yx (tuple[int, int]): (row, column) of the window centre.
      window (int): window side L.
      hw (tuple[int, int]): frame size (H, W).
    Returns:
      tuple[int, int, int, int]: (y0, y1, x0, x1), half-open, non-empty.
    """
    (cy, cx), half = centre_yx, window // 2
    y0, x0 = max(cy - half, 0), max(cx - half, 0)
    y1, x1 = min(cy + half, hw[0]), min(cx + half, hw[1])
    if y1 <= y0 or x1 <= x0:
        raise ValueError(
            f"window of side {window} at {centre_yx} (row, column) misses the {hw} (H, W) frame: "
            "give a centre inside the frame"
        )
    return y0, y1, x0, x1


def component_centres(
    mask: np.ndarray, which: str = "first", connectivity: int = 4
) -> list[tuple[int, int]]:
    """Centres of mass (truncated to integers) of the connected components of a mask.

    The authors label 4-connected components (docs/oneshot.md, "Reference centre"): two
    diagonal pixels are two targets, and the first in raster order places the window.

    Arguments:
      mask (np.ndarray): H×W bool / {0, 1}.
      which (str): ``first`` (the first component in raster order, as the authors' code) or
        ``all`` (one centre per component, in raster order).
      connectivity (int): 4 (authors) or 8.
    Returns:
      list[tuple[int, int]]: (row, column) centres; empty when the mask is empty.
    """
    labels, count = label_components(np.asarray(mask) > 0, connectivity)
    if count == 0:
        return []
    index = [1] if which == "first" else list(range(1, count + 1))
    centres = ndimage.center_of_mass(np.ones_like(labels), labels, index)
    return [(int(cy), int(cx)) for cy, cx in centres]


def mask_cell_weights(
    mask: torch.Tensor,
    img_size: int,
    grid: int,
    mode: str,
    mean0: float,
    std0: float,
    padding: str = "background",
    resize_backend: str = "torch",
) -> torch.Tensor:
    """Map a (cropped) reference mask onto the embedding grid (docs/oneshot.md, "Mask to grid").

    ``bicubic``/``bilinear`` (authors' code / PerSAM): the 0–255 mask gets the image's longest
    side resize, SAM's channel-0 mean/std normalisation and padding to S×S, then a downsample
    to g×g; cells with a value > 0 get weight 1 (in practice: the cell centre lies in the
    target). ``area`` [ours]: weight = fraction of the cell covered by the target.

    Arguments:
      mask (torch.Tensor): h×w {0, 1} mask of the reference window.
      img_size (int): encoder input side S.
      grid (int): embedding grid side g.
      mode (str): ``bicubic``, ``bilinear`` or ``area``.
      mean0 (float): SAM pixel mean of channel 0 (0–255 scale).
      std0 (float): SAM pixel std of channel 0.
      padding (str): ``background`` [ours] or ``zero_after_norm`` (the authors' order, whose
        bicubic overshoot marks cells at a clipped crop's pad edge as target); not for ``area``.
      resize_backend (str): ``torch`` or ``pil`` resize of the 0–255 mask.
    Returns:
      torch.Tensor: g×g float32 weights in [0, 1]; may be all zero for a sub-cell target.
    """
    h, w = mask.shape
    new_hw = resized_hw(h, w, img_size)
    m = mask.float()[None, None] * 255.0
    if (h, w) != new_hw:
        m = resize_images(m, new_hw, resize_backend)
    pad = (0, img_size - new_hw[1], 0, img_size - new_hw[0])
    if mode == "area":
        return F.adaptive_avg_pool2d(F.pad(m / 255.0, pad), grid)[0, 0]
    if padding == "zero_after_norm":
        m = F.pad((m - mean0) / std0, pad)
    else:
        m = (F.pad(m, pad) - mean0) / std0
    down = F.interpolate(m, size=(grid, grid), mode=mode, align_corners=False)
    return (down[0, 0] > 0).float()


def centroid_cell(mask: torch.Tensor, img_size: int, grid: int) -> tuple[int, int]:
    """The embedding cell containing the mask centroid (centre of the window if empty).

    Arguments:
      mask (torch.Tensor): h×w {0, 1} mask of the reference window.
      img_size (int): encoder input side S.
      grid (int): embedding grid side g.
    Returns:
      tuple[int, int]: (row, column) cell index in [0, g).
    """
    h, w = mask.shape
    new_h, new_w = resized_hw(h, w, img_size)
    nz = torch.nonzero(mask > 0).float()
    cy, cx = (nz.mean(0) + 0.5).tolist() if len(nz) else (h / 2.0, w / 2.0)
    cell = img_size / grid
    row = min(max(int(cy * new_h / h / cell), 0), grid - 1)
    col = min(max(int(cx * new_w / w / cell), 0), grid - 1)
    return row, col


def masked_prototype(
    features: torch.Tensor, weights: torch.Tensor, fallback_cell: tuple[int, int]
) -> torch.Tensor:
    """Weighted mean of the embedding over the target cells, L2-normalised.

    When no cell has weight (a target smaller than a cell; the authors' code then gives a NaN
    prototype, docs/oneshot.md, "Sub-cell targets"), the embedding of ``fallback_cell`` is used
    instead [ours], so the prototype is never NaN.

    Arguments:
      features (torch.Tensor): C×g×g embedding of the reference window.
      weights (torch.Tensor): g×g non-negative cell weights.
      fallback_cell (tuple[int, int]): (row, column) cell used when the weights sum to 0.
    Returns:
      torch.Tensor: C float32 unit vector (zero only if the features are zero).
    """
    total = weights.sum()
    if total > 0:
        proto = (features.float() * weights).sum(dim=(1, 2)) / total
    else:
        proto = features[:, fallback_cell[0], fallback_cell[1]].float()
    return F.normalize(proto, dim=0, eps=1e-12)


def find_peaks(
    conf: torch.Tensor,
    mode: str = "multi",
    rel_threshold: float = 0.9,
    min_distance: int = 20,
    border: int = 20,
) -> torch.Tensor:
    """Prompt points from a confidence map.

    ``multi`` (authors' code): ``skimage.feature.peak_local_max`` with ``min_distance``,
    ``threshold_abs = rel_threshold · max(C)`` (strictly greater) and a ``border`` band excluded;
    no peaks when max(C) ≤ 0. ``argmax`` (paper): the single highest point outside the band.

    Arguments:
      conf (torch.Tensor): H×W confidence map.
      mode (str): ``multi`` or ``argmax``.
      rel_threshold (float): relative threshold of ``multi``.
      min_distance (int): minimum peak separation of ``multi`` (px).
      border (int): rows/columns < border or ≥ size − border hold no peak (0 disables).
    Returns:
      torch.Tensor: P×2 int64 (row, column) peaks, by decreasing confidence.
    """
    c = conf.detach().float().cpu().numpy()
    h, w = c.shape
    if mode == "argmax":
        inner = c[border : h - border, border : w - border] if border else c
        if inner.size == 0:
            return torch.zeros(0, 2, dtype=torch.int64)
        row, col = np.unravel_index(int(np.argmax(inner)), inner.shape)
        return torch.tensor([[row + border, col + border]], dtype=torch.int64)
    peaks = peak_local_max(
        c,
        min_distance=int(min_distance),
        threshold_abs=float(rel_threshold * c.max()),
        exclude_border=int(border) if border else False,
    )
    return torch.as_tensor(peaks, dtype=torch.int64).reshape(-1, 2)
