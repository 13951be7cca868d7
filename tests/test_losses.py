# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Losses against hand-computed values and independent float64 formulas (docs/losses.md)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torchvision.ops import sigmoid_focal_loss

from irsam.losses import (
    CompositeLoss,
    DiceLoss,
    EdgeBCELoss,
    FocalLoss,
    SLSLoss,
    SoftIoULoss,
)

LOSS_DIR = Path(__file__).resolve().parents[1] / "conf" / "loss"


def empty_second_sample() -> tuple[torch.Tensor, torch.Tensor]:
    """Logits 0 (p = 0.5) on a 2×1×2×2 batch; sample 0 has one target pixel, sample 1 none."""
    target = torch.zeros(2, 1, 2, 2)
    target[0, 0, 0, 0] = 1.0
    return torch.zeros(2, 1, 2, 2), target


def test_softiou_batch_vs_sample_with_an_empty_target() -> None:
    logits, target = empty_second_sample()
    # batch: I = 0.5, Σp = 4, Σt = 1 -> 1 - 1.5 / 5.5
    assert SoftIoULoss().forward(logits, target).item() == pytest.approx(8 / 11, rel=1e-6)
    assert SoftIoULoss(reduction="batch")(logits, target).item() == pytest.approx(8 / 11, rel=1e-6)
    # sample: 1.5 / 3.5 and, for the empty target, 1 / (Σp + 1) = 1/3
    expected = 1 - (3 / 7 + 1 / 3) / 2
    assert SoftIoULoss(reduction="sample")(logits, target).item() == pytest.approx(
        expected, rel=1e-6
    )
    with pytest.raises(ValueError, match="reduction must be one of"):
        SoftIoULoss(reduction="image")


def test_dice_sample_and_batch() -> None:
    logits, target = empty_second_sample()
    # sample: (2·0.5 + 1) / (2 + 1 + 1) = 1/2 and (0 + 1) / (2 + 0 + 1) = 1/3
    assert DiceLoss()(logits, target).item() == pytest.approx(1 - (1 / 2 + 1 / 3) / 2, rel=1e-6)
    # batch: (1 + 1) / (4 + 1 + 1) = 1/3
    assert DiceLoss(reduction="batch")(logits, target).item() == pytest.approx(2 / 3, rel=1e-6)


def float64_overlap(logits: torch.Tensor, target: torch.Tensor, smooth: float) -> float:
    """Independent float64 batch-global SoftIoU."""
    p = 1 / (1 + np.exp(-logits.double().numpy()))
    t = target.double().numpy()
    inter = (p * t).sum()
    return 1 - (inter + smooth) / (p.sum() + t.sum() - inter + smooth)


def test_softiou_random_soft_targets_against_float64() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 1, 8, 9, generator=generator) * 3
    target = torch.rand(3, 1, 8, 9, generator=generator)
    for smooth in (1.0, 1e-6):
        value = SoftIoULoss(smooth=smooth)(logits, target).item()
        assert value == pytest.approx(float64_overlap(logits, target, smooth), rel=1e-5)


def test_focal_hand_value_and_torchvision() -> None:
    # logit 0, t = 1: α_t (1 - p_t)^γ ln 2 = 0.25 · 0.25 · ln 2
    one = torch.zeros(1, 1, 1, 1)
    assert FocalLoss()(one, torch.ones_like(one)).item() == pytest.approx(
        math.log(2) / 16, rel=1e-6
    )
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 1, 7, 5, generator=generator) * 4
    target = torch.rand(2, 1, 7, 5, generator=generator)
    for alpha, gamma in ((0.25, 2.0), (-1.0, 2.0), (0.6, 0.0), (0.25, 1.5)):
        expected = sigmoid_focal_loss(logits, target, alpha=alpha, gamma=gamma, reduction="mean")
        value = FocalLoss(alpha=alpha, gamma=gamma)(logits, target)
        torch.testing.assert_close(value, expected, rtol=1e-6, atol=0)


def test_focal_is_torchvision_and_equals_the_explicit_formula(monkeypatch) -> None:
    """FocalLoss.forward calls torchvision's sigmoid_focal_loss; the numbers are exactly those of
    the explicit formula α_t (1 − p_t)^γ BCE, mean over pixels."""
    from irsam import losses

    generator = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 1, 9, 6, generator=generator) * 5
    target = (torch.rand(2, 1, 9, 6, generator=generator) > 0.7).float()
    for alpha, gamma in ((0.25, 2.0), (-1.0, 2.0), (0.75, 0.5)):
        p = torch.sigmoid(logits)
        ce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
        p_t = p * target + (1.0 - p) * (1.0 - target)
        loss = ce * (1.0 - p_t) ** gamma
        if alpha >= 0:
            loss = (alpha * target + (1.0 - alpha) * (1.0 - target)) * loss
        assert torch.equal(FocalLoss(alpha=alpha, gamma=gamma)(logits, target), loss.mean())
    calls = []

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return sigmoid_focal_loss(*args, **kwargs)

    monkeypatch.setattr(losses, "sigmoid_focal_loss", spy)
    FocalLoss(alpha=0.3, gamma=1.0)(logits, target)
    assert calls == [{"alpha": 0.3, "gamma": 1.0, "reduction": "mean"}]


def test_a_non_finite_model_output_names_the_training_step() -> None:
    """The loss refuses NaN logits; the training step reports it with its step and epoch and the
    fixes (tiny 32² ViT, no trainer: step 0, epoch 0)."""
    from irsam.lit_module import IRSAMLitModule

    net = {
        "_target_": "irsam.models.build.build_irsam_vit",
        "embed_dim": 32,
        "depth": 2,
        "num_heads": 2,
        "global_attn_indexes": [1],
        "pretrain_image_size": 32,
        "encoder_size": 32,
        "checkpoint": None,
    }
    loss = OmegaConf.to_container(OmegaConf.load(LOSS_DIR / "irsam.yaml"))
    module = IRSAMLitModule(net=net, loss=loss)
    batch = {
        "image": torch.full((1, 3, 32, 32), float("nan")),
        "mask": torch.zeros(1, 1, 32, 32),
        "edge": torch.zeros(1, 1, 32, 32),
    }
    with pytest.raises(FloatingPointError) as info:
        module.training_step(batch, 0)
    message = str(info.value)
    assert message.startswith("training diverged at step 0 (epoch 0): the model output holds NaN")
    assert "optimizer.lr" in message and "trainer.gradient_clip_val" in message


def saturated(mask: np.ndarray) -> torch.Tensor:
    """``1×1×H×W`` logits ±100: σ gives exactly 1 on the mask and ~4e-44 elsewhere."""
    return torch.from_numpy(np.where(mask, 100.0, -100.0).astype(np.float32))[None, None]


def test_sls_warm_up_switch_and_scale_weight() -> None:
    target_mask = np.zeros((4, 4), dtype=bool)
    target_mask[1, 1:3] = True  # T = 2
    pred_mask = np.zeros((4, 4), dtype=bool)
    pred_mask[1, 1] = True  # P = 1, I = 1 -> IoU 1/2; V = 1/4 -> w = 1.25 / 2.25 = 5/9
    logits, target = (
        saturated(pred_mask),
        torch.from_numpy(target_mask.astype(np.float32))[None, None],
    )
    loss = SLSLoss(warm_epoch=5, with_shape=False)
    loss.epoch = 5
    assert loss(logits, target).item() == pytest.approx(1 / 2, abs=1e-6)  # warm-up: 1 - IoU
    loss.epoch = 6
    assert loss(logits, target).item() == pytest.approx(1 - 5 / 18, abs=1e-6)  # 1 - w·IoU


def float64_location(p: np.ndarray, t: np.ndarray) -> float:
    """Independent float64 MSHNet LLoss on ``B×C×H×W`` arrays, written with explicit loops."""
    batch, _, height, width = p.shape
    total = 0.0
    for b in range(batch):
        values = []
        for m in (p[b], t[b]):
            c_x = sum(j / width * m[:, i, j].sum() for i in range(height) for j in range(width))
            c_y = sum(i / height * m[:, i, j].sum() for i in range(height) for j in range(width))
            c_x, c_y = c_x / m.size, c_y / m.size
            values.append((math.sqrt(c_x**2 + c_y**2 + 1e-8), math.atan(c_y / (c_x + 1e-8))))
        (d_p, a_p), (d_t, a_t) = values
        total += 1 - min(d_p, d_t) / (max(d_p, d_t) + 1e-8) + 4 / math.pi**2 * (a_p - a_t) ** 2
    return total / batch


def test_sls_location_term_hand_value() -> None:
    # target at (0, 1): c = (1/8, 0), θ = 0; prediction at (1, 0): c = (0, 1/8), θ ≈ π/2.
    # Equal lengths -> length term ≈ 0; angle term (4/π²)(π/2)² = 1. IoU = 0 -> L_S = 1.
    target = torch.zeros(1, 1, 2, 2)
    target[0, 0, 0, 1] = 1.0
    logits = saturated(np.array([[False, False], [True, False]]))
    loss = SLSLoss(warm_epoch=-1)
    assert loss(logits, target).item() == pytest.approx(2.0, abs=1e-5)
    loss.with_shape = False
    assert loss(logits, target).item() == pytest.approx(1.0, abs=1e-6)


def test_sls_location_term_on_a_shifted_blob_against_float64() -> None:
    target = torch.zeros(2, 1, 12, 12)
    target[0, 0, 3:6, 2:5] = 1.0
    target[1, 0, 7:9, 8:10] = 1.0
    logits = torch.full((2, 1, 12, 12), -4.0)
    logits[0, 0, 4:7, 4:7] = 3.0  # shifted down-right
    logits[1, 0, 7:9, 8:10] = 3.0  # in place
    p = torch.sigmoid(logits).double().numpy()
    t = target.double().numpy()
    inter, s_p, s_t = (p * t).sum((1, 2, 3)), p.sum((1, 2, 3)), t.sum((1, 2, 3))
    iou = inter / (s_p + s_t - inter)
    spread = ((s_p - s_t) / 2) ** 2
    weight = (np.minimum(s_p, s_t) + spread) / (np.maximum(s_p, s_t) + spread)
    location = float64_location(p, t)
    assert location > 0.01
    loss = SLSLoss(warm_epoch=5)
    loss.epoch = 6
    expected = 1 - (weight * iou).mean() + location
    assert loss(logits, target).item() == pytest.approx(expected, rel=1e-5)
    loss.epoch = 0
    assert loss(logits, target).item() == pytest.approx(1 - iou.mean(), rel=1e-5)


def test_edge_bce_takes_probabilities_clamped_fp32() -> None:
    probs = torch.tensor([0.5, 1.0, 0.0]).view(1, 1, 1, 3)
    target = torch.tensor([1.0, 0.0, 0.0]).view(1, 1, 1, 3)
    upper = np.float32(1 - 1e-6)  # the clamp, as float32
    expected = (math.log(2) - math.log(1 - float(upper)) - math.log(1 - 1e-6)) / 3
    assert EdgeBCELoss()(probs, target).item() == pytest.approx(expected, rel=1e-4)
    assert EdgeBCELoss()(probs.half(), target.half()).dtype == torch.float32


def irsam_loss() -> CompositeLoss:
    """The IRSAM recipe built from conf/loss/irsam.yaml."""
    return instantiate(OmegaConf.load(LOSS_DIR / "irsam.yaml"))


def test_irsam_composite_weights_and_parts() -> None:
    generator = torch.Generator().manual_seed(2)
    outputs = {
        "mask_logits": torch.randn(2, 1, 6, 6, generator=generator, requires_grad=True),
        "edge_probs": torch.rand(2, 1, 6, 6, generator=generator, requires_grad=True),
    }
    batch = {
        "mask": (torch.rand(2, 1, 6, 6, generator=generator) > 0.7).float(),
        "edge": torch.rand(2, 1, 6, 6, generator=generator),
    }
    loss = irsam_loss()
    total, parts = loss(outputs, batch)
    assert set(parts) == {"edge_bce", "softiou"}
    assert torch.equal(total, 5.0 * parts["edge_bce"] + parts["softiou"])
    assert torch.equal(parts["edge_bce"], EdgeBCELoss()(outputs["edge_probs"], batch["edge"]))
    assert torch.equal(
        parts["softiou"], SoftIoULoss(smooth=1e-6)(outputs["mask_logits"], batch["mask"])
    )
    total.backward()
    assert all(torch.isfinite(t.grad).all() for t in outputs.values())


def test_composite_missing_edge_output_names_config_and_fix() -> None:
    with pytest.raises(KeyError, match=r"loss config 'irsam'.*edge_probs.*loss=softiou"):
        irsam_loss()({"mask_logits": torch.zeros(1, 1, 4, 4)}, {"mask": torch.zeros(1, 1, 4, 4)})


def test_composite_set_epoch_reaches_sls() -> None:
    loss = instantiate(OmegaConf.load(LOSS_DIR / "sls.yaml"))
    loss.set_epoch(7)
    assert loss.losses["sls"].epoch == 7


@pytest.mark.parametrize("name", ["softiou", "dice", "focal", "sls", "irsam", "dice_focal"])
def test_loss_configs_instantiate_and_every_key_is_commented(name: str) -> None:
    path = LOSS_DIR / f"{name}.yaml"
    assert path.read_text().startswith("# Copyright (c) 2026 The irsam authors.")
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            assert " # " in line, f"{path.name}: uncommented key: {line!r}"
    cfg = OmegaConf.load(path)
    assert cfg._target_ == "irsam.losses.CompositeLoss"
    loss = instantiate(cfg)
    outputs = {"mask_logits": torch.randn(2, 1, 8, 8), "edge_probs": torch.rand(2, 1, 8, 8)}
    batch = {"mask": (torch.rand(2, 1, 8, 8) > 0.8).float(), "edge": torch.rand(2, 1, 8, 8)}
    total, parts = loss(outputs, batch)
    assert torch.isfinite(total) and set(parts) == set(cfg.terms)


def all_losses() -> list[torch.nn.Module]:
    """Every loss in its default and its most fragile (smooth 0 / eps 0 after warm-up) form."""
    return [
        SoftIoULoss(),
        SoftIoULoss(smooth=0.0, reduction="sample"),
        DiceLoss(),
        DiceLoss(smooth=0.0, reduction="batch"),
        FocalLoss(),
        SLSLoss(),
        SLSLoss(warm_epoch=-1),
        EdgeBCELoss(),
    ]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("case", ["empty_neg", "empty_pos", "full_pos", "full_neg", "mixed"])
def test_finite_values_and_gradients_in_extreme_cases(dtype: torch.dtype, case: str) -> None:
    target = torch.zeros(2, 1, 5, 5)
    logits = torch.full((2, 1, 5, 5), -100.0)
    if case == "empty_pos":
        logits.fill_(100.0)
    elif case == "full_pos":
        target.fill_(1.0)
        logits.fill_(100.0)
    elif case == "full_neg":
        target.fill_(1.0)
    elif case == "mixed":
        target[0, 0, 2, 2] = 1.0
        logits[1].fill_(100.0)
    for loss in all_losses():
        x = logits.to(dtype).requires_grad_(True)
        value = loss(x, target.to(dtype))
        assert value.dtype == torch.float32
        assert torch.isfinite(value), (type(loss).__name__, case, dtype)
        value.backward()
        assert torch.isfinite(x.grad.float()).all(), (type(loss).__name__, case, dtype)


def test_half_inputs_match_float32_and_autocast_region() -> None:
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 1, 8, 8, generator=generator)
    target = (torch.rand(2, 1, 8, 8, generator=generator) > 0.8).float()
    reference = SoftIoULoss()(logits.half().float(), target)
    torch.testing.assert_close(SoftIoULoss()(logits.half(), target.half()), reference)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for loss in all_losses():
            value = loss(logits, target)
            assert value.dtype == torch.float32 and torch.isfinite(value)
