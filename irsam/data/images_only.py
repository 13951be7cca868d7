# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Dataset of image files without ground truth, for ``predict.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import torch
from torch.utils.data import Dataset

from irsam.data.io import HighBitNorm, ImageReadError, list_images, read_image


def collect_inputs(path: str | Path) -> list[Path]:
    """The image files named by ``path``: the file itself, or the images directly in a folder.

    Arguments:
      path (str | Path): an image file or a folder of images.
    Returns:
      list[Path]: sorted image paths (at least one).
    """
    path = Path(path)
    files = [path] if path.is_file() else list_images(path)
    if not files:
        raise ImageReadError(f"{path}: no images found (.png, .jpg, .bmp, .tif). Set input=<image or folder>.")
    return files


class ImageFileDataset(Dataset):
    """Images resized to the model's loader size, with their native size kept for the outputs.

    Items: ``image`` 3×S×S float RGB 0–255, ``orig_size`` (2,) long (H, W), ``valid_size`` (2,) long
    (S, S), ``name`` (file stem), ``path`` (str).

    Arguments:
      files (list[Path]): image files.
      image_size (int): loader resolution S (the one the checkpoint was trained at).
      high_bit_norm (str): mapping of 16-bit / float data to 0–255 (see :func:`read_image`).
    """

    def __init__(self, files: list[Path], image_size: int, high_bit_norm: HighBitNorm = "percentile") -> None:
        self.files = files
        self.image_size = image_size
        self.high_bit_norm = high_bit_norm

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.files[index]
        image = read_image(path, self.high_bit_norm)
        height, width = image.shape[:2]
        resized = cv2.resize(image, (self.image_size, self.image_size), interpolation=cv2.INTER_LINEAR)
        return {"image": torch.from_numpy(resized).permute(2, 0, 1).contiguous(),
                "orig_size": torch.tensor([height, width]),
                "valid_size": torch.tensor([self.image_size, self.image_size]),
                "name": path.stem, "path": str(path)}
