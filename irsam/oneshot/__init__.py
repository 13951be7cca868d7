# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""One-shot, training-free sequential infrared small target segmentation (LFM + PPCF + TLE,
Dan et al., arXiv 2408.04823) on a frozen SAM-family backbone; see docs/oneshot.md."""

from irsam.oneshot.annotations import (
    Annotation,
    BoxAnnotation,
    MaskAnnotation,
    PointAnnotation,
    parse_annotation,
)
from irsam.oneshot.backbone import (
    IrsamEncoderBackbone,
    SamBackbone,
    SamModelBackbone,
    build_backbone,
)
from irsam.oneshot.config import OneShotConfig
from irsam.oneshot.real_sequence import make_real_sequence, write_real_benchmark
from irsam.oneshot.segmenter import OneShotOutput, OneShotSegmenter, ReferenceState
from irsam.oneshot.synthetic_sequence import make_synthetic_sequence, write_synthetic_sequence

__all__ = [
    "Annotation",
    "BoxAnnotation",
    "IrsamEncoderBackbone",
    "MaskAnnotation",
    "OneShotConfig",
    "OneShotOutput",
    "OneShotSegmenter",
    "PointAnnotation",
    "ReferenceState",
    "SamBackbone",
    "SamModelBackbone",
    "build_backbone",
    "make_real_sequence",
    "make_synthetic_sequence",
    "parse_annotation",
    "write_real_benchmark",
    "write_synthetic_sequence",
]
