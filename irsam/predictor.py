# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Python API: segment NumPy images with a trained checkpoint or a model folder.

:class:`Predictor` runs the code ``predict.py`` runs for an image file, step by step: the
checkpoint's loader options (:func:`irsam.lit_module.inference_options`), the frame preparation of
:mod:`irsam.data.streams` (``high_bit_norm`` mapping to 0–255, bilinear resize to the loader size),
the batch contract of :func:`irsam.data.collate.collate_irstd`, the module's ``predict_step``
(logits at each image's native size) and the mask, probabilities and target rows of
:mod:`irsam.outputs.predictions`. Its masks therefore equal the ones ``predict.py`` writes for the
same pixels, batch size and precision (docs/python-api.md).
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from irsam.data.collate import collate_irstd
from irsam.data.streams import STACK_DTYPES, FrameStream
from irsam.lit_module import IRSAMLitModule, inference_options
from irsam.outputs.predictions import TARGET_COLUMNS, binarise_logits, target_rows
from irsam.tiling import TiledNetwork
from irsam.utils import MissingFileError

PRECISIONS: dict[str, torch.dtype | None] = {
    "32": None,
    "32-true": None,
    "bf16": torch.bfloat16,
    "bf16-mixed": torch.bfloat16,
    "16": torch.float16,
    "16-mixed": torch.float16,
}
"""Accepted ``precision`` values (``trainer.precision``'s names) and the autocast type of each
(None: float32 throughout)."""

TARGET_FIELDS = TARGET_COLUMNS[1:]
"""Keys of a :attr:`Prediction.targets` entry: the ``targets.csv`` columns after ``image``."""


@dataclass(frozen=True)
class Prediction:
    """The segmentation of one image, at the image's own size.

    Arguments:
      mask (np.ndarray): H×W bool, target pixels (``logit > threshold``).
      probability (np.ndarray): H×W float32 sigmoid probabilities in [0, 1].
      targets (list[dict[str, Any]]): one entry per 8-connected target in raster order, keyed by
        :data:`TARGET_FIELDS`: ``target`` (1-based id), ``centroid_x``/``centroid_y`` (pixels,
        unweighted), ``area`` (pixels), ``score_max``/``score_mean`` (probabilities) and
        ``bbox_x0``, ``bbox_y0``, ``bbox_x1``, ``bbox_y1`` (pixels, x1/y1 exclusive).
    """

    mask: np.ndarray
    probability: np.ndarray
    targets: list[dict[str, Any]]


class _ArrayFrames(FrameStream):
    """In-memory images as a frame stream: the loader items ``predict.py`` makes of files."""

    def __init__(self, images: Sequence[np.ndarray], loader_size: int, high_bit_norm: Any) -> None:
        super().__init__("<array>", loader_size, high_bit_norm, on_error="stop")
        self.images = images

    def frame_count(self) -> int:
        """Number of images."""
        return len(self.images)

    def _expected(self) -> list[tuple[str, str]]:
        """(frame, output name) of every image."""
        return [(f"image {index}", str(index)) for index in range(len(self.images))]

    def _arrays(self) -> Iterator[tuple[int, str, str, np.ndarray]]:
        """Yield (index, frame, name, pixels) of every image."""
        for index, image in enumerate(self.images):
            yield index, f"image {index}", str(index), image


def _checked(image: Any, index: int) -> np.ndarray:
    """``image`` when it is an image :class:`Predictor` reads; TypeError/ValueError otherwise."""
    where = f"Predictor: image {index}"
    if not isinstance(image, np.ndarray):
        hint = " (convert a tensor with .cpu().numpy())" if isinstance(image, torch.Tensor) else ""
        raise TypeError(
            f"{where} is a {type(image).__name__}; pass a NumPy array H×W (grey) or H×W×3 (RGB)"
            f"{hint}."
        )
    if not any(image.dtype == np.dtype(kind) for kind in STACK_DTYPES):
        names = [np.dtype(kind).name for kind in STACK_DTYPES]
        raise TypeError(
            f"{where} has pixel type {image.dtype}; expected one of {names}. Convert it, e.g. "
            "image.astype(np.uint16) for 14-bit sensor counts or image.astype(np.float32)."
        )
    if image.ndim == 3 and image.shape[-1] == 4:
        raise ValueError(
            f"{where} has 4 channels (shape {image.shape}); drop the alpha channel: image[..., :3]."
        )
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[-1] in (1, 3))):
        raise ValueError(
            f"{where} has shape {image.shape}; expected H×W (grey), H×W×1 or H×W×3 (RGB). Pass "
            "several images as a list, e.g. list(stack) for an N×H×W stack."
        )
    if image.size == 0:
        raise ValueError(f"{where} is empty (shape {image.shape}).")
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        count = int(np.size(image) - np.isfinite(image).sum())
        raise ValueError(
            f"{where} holds {count} NaN or infinite values; replace them first, e.g. "
            "np.nan_to_num(image, nan=np.nanmin(image))."
        )
    return image


class Predictor:
    """Segments NumPy images with a trained IRSAM module, as ``predict.py`` does.

    Images are H×W (grey) or H×W×3 (RGB), ``uint8``, ``uint16`` or float, of any size: 8-bit
    data is used as is, 16-bit and float data are mapped to 0–255 by ``high_bit_norm``. Each is
    resized to the loader size, segmented, and its logits brought back to its own size.

    Arguments:
      module (IRSAMLitModule): from :meth:`IRSAMLitModule.from_checkpoint`.
      device (str | torch.device): where the network runs: ``cpu``, ``cuda``, ``cuda:1``, ...
      precision (str): ``32`` (float32), ``bf16-mixed`` (or ``bf16``) or ``16-mixed`` (or
        ``16``): autocast, as ``trainer.precision`` in ``predict.py``.
      loader_size (int | None): side images are resized to; None = the checkpoint's.
      high_bit_norm (str | None): ``percentile``, ``minmax`` or ``bit_depth`` (see
        :func:`irsam.data.io.read_image`); None = the checkpoint's.
      tile (int | None): tiled prediction for frames much larger than the training images, as
        ``predict.py tile=``: images stay at their native size and are segmented in windows of
        this side, each resized to the loader size, with the logits stitched
        (:class:`irsam.tiling.TiledNetwork`); None = resize each image to the loader size.
      overlap (int): pixels shared by neighbouring windows (``tile`` only).
    """

    def __init__(
        self,
        module: IRSAMLitModule,
        *,
        device: str | torch.device = "cpu",
        precision: str = "32",
        loader_size: int | None = None,
        high_bit_norm: str | None = None,
        tile: int | None = None,
        overlap: int = 64,
    ) -> None:
        if str(precision) not in PRECISIONS:
            raise ValueError(f"precision={precision!r} is not one of {list(PRECISIONS)}.")
        self.precision = str(precision)
        self.device = torch.device(device)
        self.module = module.to(self.device).eval()
        self.options = inference_options(module, loader_size, high_bit_norm)
        self.tile = tile
        if tile is not None:
            module.use_runner(
                TiledNetwork(module.net, tile=tile, overlap=overlap, window_size=self.loader_size)
            )

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        *,
        device: str | torch.device = "cpu",
        precision: str = "32",
        loader_size: int | None = None,
        high_bit_norm: str | None = None,
        threshold: float | None = None,
        tile: int | None = None,
        overlap: int = 64,
    ) -> Predictor:
        """A predictor for a ``train.py`` checkpoint (or a model folder).

        Arguments:
          path (str | PathLike): a ``.ckpt`` written by ``train.py``, or a model folder.
          device (str | torch.device): where the network runs.
          precision (str): see :class:`Predictor`.
          loader_size (int | None): None = the checkpoint's.
          high_bit_norm (str | None): None = the checkpoint's.
          threshold (float | None): logit threshold of a target pixel; None = the checkpoint's
            ``metrics.threshold``.
          tile (int | None): window side of tiled prediction; None = off (see :class:`Predictor`).
          overlap (int): pixels shared by neighbouring windows.
        Returns:
          Predictor: ready to segment.
        Raises:
          FileNotFoundError: no such file.
          CheckpointError: not a readable ``train.py`` checkpoint or model folder.
        """
        metrics = None if threshold is None else {"threshold": float(threshold)}
        module = IRSAMLitModule.from_checkpoint(path, metrics=metrics)
        return cls(
            module,
            device=device,
            precision=precision,
            loader_size=loader_size,
            high_bit_norm=high_bit_norm,
            tile=tile,
            overlap=overlap,
        )

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, **options: Any) -> Predictor:
        """A predictor for a model folder (``config.json`` + ``model.safetensors``, read without
        pickle; :meth:`save_pretrained`, ``python export.py format=pretrained``).

        Arguments:
          folder (str | PathLike): the model folder.
          **options: the keyword arguments of :meth:`from_checkpoint`.
        Returns:
          Predictor: ready to segment.
        Raises:
          FileNotFoundError: ``folder`` is not a folder, or a file of it is missing.
          CheckpointError: a file of it is unreadable or of another format.
        """
        if not Path(folder).is_dir():
            raise MissingFileError(
                f"{folder} is not a model folder (config.json + model.safetensors); for a .ckpt "
                "use Predictor.from_checkpoint."
            )
        return cls.from_checkpoint(folder, **options)

    @property
    def loader_size(self) -> int:
        """Side of the square images the network is fed (pixels)."""
        return int(self.options["loader_size"])

    @property
    def high_bit_norm(self) -> str:
        """How 16-bit and float images are mapped to 0–255."""
        return str(self.options["high_bit_norm"])

    @property
    def threshold(self) -> float:
        """Logit threshold of a target pixel."""
        return float(self.module.threshold)

    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """Write this predictor as a model folder (its loader options included).

        Arguments:
          folder (str | PathLike): destination folder.
        Returns:
          Path: the folder (:meth:`IRSAMLitModule.save_pretrained`).
        """
        return self.module.save_pretrained(
            folder, loader_size=self.loader_size, high_bit_norm=self.high_bit_norm
        )

    def predict(self, image: np.ndarray | Sequence[np.ndarray]) -> Prediction | list[Prediction]:
        """Segment one image, or each image of a list (one network call per image).

        Arguments:
          image (np.ndarray | Sequence[np.ndarray]): H×W or H×W×3, uint8 / uint16 / float32 /
            float64, any size; or a list of them.
        Returns:
          Prediction | list[Prediction]: one per image, at each image's size.
        Raises:
          TypeError: not a NumPy array, or an unsupported pixel type.
          ValueError: a wrong shape (4 channels included), an empty image, or NaN/inf values.
        """
        if isinstance(image, np.ndarray):
            return self.predict_batch([image], batch_size=1)[0]
        return self.predict_batch(image, batch_size=1)

    def predict_batch(self, images: Sequence[np.ndarray], batch_size: int = 8) -> list[Prediction]:
        """Segment a list of images, ``batch_size`` per network call (for throughput).

        Arguments:
          images (Sequence[np.ndarray]): images as in :meth:`predict`, of any mix of sizes.
          batch_size (int): images per network call (>= 1).
        Returns:
          list[Prediction]: one per image, in order.
        Raises:
          TypeError: ``images`` is one array instead of a list, or an image is not readable.
          ValueError: see :meth:`predict`; ``batch_size`` < 1.
        """
        if isinstance(images, np.ndarray):
            raise TypeError(
                "predict_batch takes a list of images; pass [image] for one, or list(stack) for "
                "an N×H×W stack."
            )
        if int(batch_size) < 1:
            raise ValueError(f"batch_size={batch_size} must be >= 1.")
        checked = [_checked(image, index) for index, image in enumerate(images)]
        size = 0 if self.tile is not None else self.loader_size  # 0: native size, as predict.py
        items = iter(_ArrayFrames(checked, size, self.high_bit_norm))
        results: list[Prediction] = []
        while chunk := list(itertools.islice(items, int(batch_size))):
            batch = collate_irstd(chunk, pad_value=self.options.get("pad_value", 128.0))
            results.extend(self._segment(batch))
        return results

    def _segment(self, batch: dict[str, Any]) -> list[Prediction]:
        """Run ``predict_step`` on one collated batch and binarise each native logit map."""
        batch = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        dtype = PRECISIONS[self.precision]
        autocast = (
            torch.autocast(self.device.type, dtype=dtype) if dtype else contextlib.nullcontext()
        )
        with torch.inference_mode(), autocast:
            logits = self.module.predict_step(batch, 0)["native_logits"]
        predictions = []
        for name, logit in zip(batch["name"], logits, strict=True):
            mask, probability = binarise_logits(logit[0, 0].float().cpu().numpy(), self.threshold)
            rows = target_rows(name, mask, probability)
            targets = [dict(zip(TARGET_FIELDS, row[1:], strict=True)) for row in rows]
            predictions.append(Prediction(mask, probability, targets))
        return predictions
