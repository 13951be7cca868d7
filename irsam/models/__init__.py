# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Models: TinyViT / SAM ViT encoders, WPMD, the GAD decoder, the IRSAM composite, builders,
strict checkpoint loading, freeze presets, parameter groups and parameter counts."""

from irsam.models.build import (
    IRSAMOptions,
    NetOptions,
    build_irsam_tiny,
    build_irsam_vit,
    build_irsam_vit_b,
    build_irsam_vit_h,
    build_irsam_vit_l,
    build_mobile_sam,
    build_prompt_sam,
    build_sam_vit_b,
    model_registry,
)
from irsam.models.checkpoints import (
    CheckpointError,
    LoadReport,
    load_checkpoint,
    read_checkpoint,
    save_model_weights,
)
from irsam.models.freeze import FREEZE_PRESETS, apply_freeze
from irsam.models.gad import GranularityAwareDecoder
from irsam.models.irsam import IRSAM
from irsam.models.param_groups import build_param_groups, count_parameters
from irsam.models.tiny_vit import TinyViTEncoder
from irsam.models.vit_encoder import ViTEncoder
from irsam.models.wpmd import WPMD

__all__ = [
    "FREEZE_PRESETS",
    "IRSAM",
    "WPMD",
    "CheckpointError",
    "GranularityAwareDecoder",
    "IRSAMOptions",
    "LoadReport",
    "NetOptions",
    "TinyViTEncoder",
    "ViTEncoder",
    "apply_freeze",
    "build_irsam_tiny",
    "build_irsam_vit",
    "build_irsam_vit_b",
    "build_irsam_vit_h",
    "build_irsam_vit_l",
    "build_mobile_sam",
    "build_param_groups",
    "build_prompt_sam",
    "build_sam_vit_b",
    "count_parameters",
    "load_checkpoint",
    "model_registry",
    "read_checkpoint",
    "save_model_weights",
]
