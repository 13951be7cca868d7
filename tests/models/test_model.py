# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""IRSAM models on CPU at small internal resolutions: shapes, batching, gradients, parameter
accounting, freeze presets, layer decay, configs and the promptable SAM for SamPredictor."""

from __future__ import annotations

import inspect
from dataclasses import fields
from functools import partial
from pathlib import Path

import hydra
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from irsam.models import (
    FREEZE_PRESETS,
    IRSAM,
    IRSAMOptions,
    NetOptions,
    apply_freeze,
    build_irsam_tiny,
    build_irsam_vit,
    build_mobile_sam,
    build_param_groups,
    build_prompt_sam,
    count_parameters,
    model_registry,
)
from irsam.models.build import build_irsam_sam2_hiera, build_sam2_hiera
from irsam.models.build import build_irsam_vit as vit_builder
from irsam.models.sam2_encoder import HIERA_SIZES

SMALL = 128  # internal resolution for CPU tests (8×8 token grid)
TINY_VIT = {
    "embed_dim": 64,
    "depth": 4,
    "num_heads": 2,
    "global_attn_indexes": (1, 3),
    "pretrain_image_size": SMALL,
}


@pytest.fixture(scope="module")
def tiny() -> IRSAM:
    torch.manual_seed(0)
    return build_irsam_tiny(encoder_size=SMALL).eval()


def _perturb_(model: nn.Module) -> None:
    """Make every parameter influential: non-zero γ, BN scales and position tables."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("gamma") or (param.ndim >= 1 and param.abs().sum() == 0):
                param.uniform_(0.1, 0.3)


@pytest.mark.parametrize("size", [(96, 128), (101, 77), (128, 128)])
def test_irsam_tiny_output_shapes(tiny: IRSAM, size: tuple) -> None:
    with torch.no_grad():
        out = tiny(torch.rand(2, 3, *size) * 255)
    assert set(out) == {"mask_logits", "edge_probs"}
    for value in out.values():
        assert value.shape == (2, 1, *size) and value.dtype == torch.float32
        assert torch.isfinite(value).all()
    assert ((out["edge_probs"] >= 0) & (out["edge_probs"] <= 1)).all()


def test_encoder_interface(tiny: IRSAM) -> None:
    enc = tiny.image_encoder
    assert enc.img_size == SMALL and enc.shallow_channels == 160
    deep, shallow = enc(torch.randn(1, 3, SMALL, SMALL))
    assert deep.shape == (1, 256, SMALL // 16, SMALL // 16)
    assert shallow.shape == (1, 160, SMALL // 16, SMALL // 16)
    deep, shallow = enc(torch.randn(1, 3, 256, 256))  # the grid follows the input
    assert deep.shape[-2:] == (16, 16) and shallow.shape[-2:] == (16, 16)


@pytest.mark.parametrize("fusion", ["deep", "shallow", "deep+shallow"])
def test_gad_fusion_variants(fusion: str) -> None:
    model = build_irsam_tiny(encoder_size=SMALL, wpmd=False, gad_fusion=fusion).eval()
    decoder = model.mask_decoder
    assert hasattr(decoder, "embedding_encoder") == ("deep" in fusion)
    assert hasattr(decoder, "compress_vit_feat") == ("shallow" in fusion)
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 64) * 255)
    assert out["mask_logits"].shape == out["edge_probs"].shape == (1, 1, 64, 64)


def test_baseline_returns_only_mask_logits() -> None:
    model = build_mobile_sam(encoder_size=SMALL).eval()
    assert not model.has_edge_branch and not hasattr(model.mask_decoder, "edge_token")
    with torch.no_grad():
        out = model(torch.rand(1, 3, 70, 90) * 255)
    assert set(out) == {"mask_logits"} and out["mask_logits"].shape == (1, 1, 70, 90)


def test_gradients_reach_every_trainable_parameter() -> None:
    torch.manual_seed(0)
    model = build_irsam_tiny(encoder_size=SMALL)
    _perturb_(model)
    out = model(torch.rand(2, 3, 64, 64) * 255)
    (out["mask_logits"].square().mean() + out["edge_probs"].square().mean()).backward()
    unused = tuple("mask_decoder." + p for p in model.mask_decoder.unused_prefixes)
    for name, param in model.named_parameters():
        if name.startswith(unused):
            assert not param.requires_grad and param.grad is None, name
        else:
            assert param.grad is not None and param.grad.abs().sum() > 0, f"no gradient for {name}"


def test_vit_gradients_and_shapes_small_config() -> None:
    """A small SAM-style ViT (embed 64, depth 4) through the same code path as ViT-B/L/H."""
    torch.manual_seed(0)
    model = build_irsam_vit(**TINY_VIT, encoder_size=SMALL)
    assert set(model.image_encoder.wpmd) == {"1", "3"}
    _perturb_(model)
    out = model(torch.rand(2, 3, 101, 77) * 255)
    assert out["mask_logits"].shape == (2, 1, 101, 77)
    (out["mask_logits"].mean() + out["edge_probs"].mean()).backward()
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert param.grad is not None and param.grad.abs().sum() > 0, f"no gradient for {name}"


def test_vit_internal_resolution_differs_from_pretraining() -> None:
    """Weights laid out for 128 px run at 64 px (pos_embed resized, rel-pos interpolated)."""
    model = build_irsam_vit(**TINY_VIT, encoder_size=64).eval()
    assert model.image_encoder.pos_embed.shape[1:3] == (SMALL // 16, SMALL // 16)
    deep, shallow = model.encode(torch.rand(1, 3, 50, 50) * 255)
    assert deep.shape == (1, 256, 4, 4) and shallow.shape == (1, 64, 4, 4)


@pytest.mark.parametrize(
    "builder", [build_irsam_tiny, lambda **kw: build_irsam_vit(**TINY_VIT, **kw)]
)
def test_grad_checkpointing_gives_same_gradients(builder) -> None:
    torch.manual_seed(0)
    plain = builder(encoder_size=64)
    _perturb_(plain)
    ckpt = builder(encoder_size=64, grad_checkpointing=True)
    ckpt.load_state_dict(plain.state_dict())
    images = torch.rand(1, 3, 64, 64) * 255
    for model in (plain, ckpt):
        model(images)["mask_logits"].sum().backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), ckpt.named_parameters(), strict=True):
        if a.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_parameter_count_matches_paper(tiny: IRSAM) -> None:
    counts = count_parameters(tiny)
    print(f"irsam_tiny parameters: {counts}")
    assert abs(counts["total"] - 12.33e6) / 12.33e6 < 0.10
    unused = sum(
        p.numel()
        for n, p in tiny.named_parameters()
        if n.startswith(tuple("mask_decoder." + u for u in tiny.mask_decoder.unused_prefixes))
    )
    assert counts["trainable"] == counts["effective"] == counts["total"] - unused
    assert 0.5e6 < unused < 0.6e6


def test_freeze_presets() -> None:
    model = build_irsam_tiny(encoder_size=SMALL)
    for preset in FREEZE_PRESETS:
        apply_freeze(model, preset)
        model.train()
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        assert not any(n.startswith("mask_decoder.iou_prediction_head.") for n in trainable)
        wpmd = {n for n in trainable if n.startswith("image_encoder.wpmd.")}
        encoder = {n for n in trainable if n.startswith("image_encoder.") and n not in wpmd}
        decoder = {n for n in trainable if n.startswith("mask_decoder.")}
        assert decoder, preset
        if preset == "none":
            assert encoder and wpmd and "no_mask_embed.weight" in trainable
        elif preset == "encoder":
            assert not encoder and wpmd and "no_mask_embed.weight" in trainable
            assert not model.image_encoder.patch_embed.seq[
                0
            ].bn.training  # frozen BN keeps its stats
            assert model.image_encoder.wpmd["1"].refine[1].training
        elif preset == "wpmd_decoder":
            assert not encoder and wpmd and "no_mask_embed.weight" not in trainable
        else:
            assert trainable == decoder
    with pytest.raises(ValueError, match="model.freeze"):
        apply_freeze(model, "everything")


def test_layer_decay_changes_group_lrs(tiny: IRSAM) -> None:
    apply_freeze(tiny, "none")
    flat = build_param_groups(tiny, lr=1e-3, weight_decay=0.05, layer_decay=1.0)
    assert {g["lr"] for g in flat} == {1e-3}
    groups = build_param_groups(tiny, lr=1e-3, weight_decay=0.05, layer_decay=0.8)
    top = tiny.image_encoder.num_lr_layers
    assert top == 13
    by_param = {id(p): g for g in groups for p in g["params"]}
    stem = tiny.image_encoder.patch_embed.seq[0].c.weight
    assert by_param[id(stem)]["lr"] == pytest.approx(1e-3 * 0.8**top)
    last_block = tiny.image_encoder.layers[3].blocks[1].attn.qkv.weight
    assert by_param[id(last_block)]["lr"] == pytest.approx(1e-3 * 0.8)
    for param in (
        tiny.mask_decoder.edge_token.weight,
        tiny.image_encoder.wpmd["1"].refine[0].weight,
        tiny.image_encoder.neck[0].weight,
    ):
        assert by_param[id(param)]["lr"] == pytest.approx(1e-3)
    assert by_param[id(tiny.image_encoder.wpmd["1"].gamma)]["weight_decay"] == 0.0
    assert by_param[id(last_block)]["weight_decay"] == 0.05
    assert by_param[id(tiny.mask_decoder.edge_token.weight)]["weight_decay"] == 0.0
    n_groups = sum(len(g["params"]) for g in groups)
    assert n_groups == sum(1 for p in tiny.parameters() if p.requires_grad)
    torch.optim.AdamW(groups)  # valid optimiser groups


def test_registry_and_configs(tmp_path: Path) -> None:
    """Each registered model has a config (composed from conf/model/) whose builder is the
    registry's and whose ``net`` keys are options that builder takes."""
    from conftest import compose_config

    assert set(model_registry) == {
        "irsam_tiny",
        "irsam_vit_b",
        "irsam_vit_l",
        "irsam_vit_h",
        "mobile_sam",
        "sam_vit_b",
        *(f"{prefix}sam2_hiera_{size}" for prefix in ("irsam_", "") for size in HIERA_SIZES),
    }
    generic = {
        "irsam_vit": vit_builder,
        "irsam_sam2": build_irsam_sam2_hiera,
        "sam2_": build_sam2_hiera,
    }
    for name in model_registry:
        cfg = compose_config("train", tmp_path, [f"model={name}"]).model
        assert cfg._target_ == "irsam.lit_module.IRSAMLitModule" and cfg._recursive_ is False
        assert cfg.freeze in FREEZE_PRESETS and "freeze" not in cfg.net  # the one freeze knob
        target = hydra.utils.get_method(cfg.net._target_)
        assert target is model_registry[name]
        builder = next((b for prefix, b in generic.items() if name.startswith(prefix)), target)
        options = IRSAMOptions if name.startswith("irsam_") else NetOptions
        keywords = {
            key
            for key, parameter in inspect.signature(builder).parameters.items()
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY
        }
        unknown = set(cfg.net) - {"_target_"} - keywords - {f.name for f in fields(options)}
        assert not unknown, f"model={name} has net keys its builder does not take: {unknown}"
        if name in ("irsam_tiny", "mobile_sam"):
            cfg.net.encoder_size = 64
            model = hydra.utils.instantiate(cfg.net)
            assert isinstance(model, IRSAM) and model.img_size == 64
            assert model.has_edge_branch == (name == "irsam_tiny")


def test_prompt_sam_works_with_sam_predictor() -> None:
    from segment_anything import SamPredictor

    torch.manual_seed(0)
    sam = build_prompt_sam(encoder="tiny")
    assert sam.image_encoder.img_size == 1024
    predictor = SamPredictor(sam)
    image = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
    predictor.set_image(image)
    assert predictor.features.shape == (1, 256, 64, 64)
    masks, scores, low_res = predictor.predict(
        point_coords=np.array([[20, 30]]), point_labels=np.array([1])
    )
    assert masks.shape == (3, 48, 64) and scores.shape == (3,) and low_res.shape == (3, 256, 256)


def test_channels_last_and_bilinear_match_default_layout() -> None:
    plain = build_irsam_tiny(encoder_size=64, resize_mode="bilinear").eval()
    fast = build_irsam_tiny(encoder_size=64, resize_mode="bilinear", channels_last=True).eval()
    fast.load_state_dict(plain.state_dict())
    images = torch.rand(1, 3, 50, 60) * 255
    with torch.no_grad():
        torch.testing.assert_close(fast(images)["mask_logits"], plain(images)["mask_logits"])


def test_edge_upsample_order_authors_vs_ours() -> None:
    """``probabilities`` = the authors' order (sigmoid on the 4g grid, then bilinear upsampling),
    ``logits`` = upsample the logits, then sigmoid; the masks are the same either way."""
    torch.manual_seed(0)
    authors = build_irsam_tiny(encoder_size=SMALL, edge_upsample="probabilities").eval()
    _perturb_(authors)
    ours = build_irsam_tiny(encoder_size=SMALL, edge_upsample="logits").eval()
    ours.load_state_dict(authors.state_dict())
    images = torch.rand(1, 3, 96, 96) * 255
    with torch.no_grad():
        deep, shallow = authors.encode(images)
        raw = authors.mask_decoder(
            image_embeddings=deep,
            image_pe=authors.pe_layer(deep.shape[-2:]).unsqueeze(0),
            dense_prompt_embeddings=authors.no_mask_embed.weight.reshape(1, -1, 1, 1),
            shallow_embeddings=shallow,
        )["edge_logits"]
        a, b = authors(images), ours(images)
    up = partial(F.interpolate, size=(96, 96), mode="bilinear", align_corners=False)
    torch.testing.assert_close(a["edge_probs"], up(torch.sigmoid(raw)))
    torch.testing.assert_close(b["edge_probs"], torch.sigmoid(up(raw)))
    torch.testing.assert_close(a["mask_logits"], b["mask_logits"])
    assert (a["edge_probs"] - b["edge_probs"]).abs().max() > 1e-4  # the two orders differ
