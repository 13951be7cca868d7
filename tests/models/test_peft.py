# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""PEFT (irsam.models.peft): LoRA / LoHa / IA3 on tiny SAM-ViT and TinyViT IRSAM models on CPU.

Training changes only adapter, WPMD and decoder tensors; adapter-only state dicts re-load on
fresh base weights to the same outputs; merged networks match unmerged ones."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

pytest.importorskip("peft", reason="the optional `peft` package is not installed (irsam[peft])")

from irsam.models import CheckpointError, build_irsam_tiny, build_irsam_vit
from irsam.models.peft import (
    TRAINABLE_PREFIXES,
    adapter_state_dict,
    apply_peft,
    delta_keys,
    has_peft,
    load_adapter_state_dict,
    merge_peft,
    require_base_weights,
)

CONF = Path(__file__).resolve().parents[2] / "conf" / "peft"
SIZE = 64  # internal resolution: a 4×4 token grid
VIT = {
    "embed_dim": 64,
    "depth": 4,
    "num_heads": 2,
    "global_attn_indexes": (1, 3),
    "pretrain_image_size": SIZE,
    "encoder_size": SIZE,
}


def _peft_cfg(method: str) -> dict:
    return OmegaConf.to_container(OmegaConf.load(CONF / f"{method}.yaml"), resolve=True)


def _vit(seed: int):
    torch.manual_seed(seed)
    return build_irsam_vit(**VIT)


def _tiny(seed: int):
    torch.manual_seed(seed)
    return build_irsam_tiny(encoder_size=SIZE)


def _images(batch: int = 2) -> torch.Tensor:
    return torch.rand(batch, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(7)) * 255


def _adapter_names(net) -> list[str]:
    return [k for k in delta_keys(net) if not k.startswith(TRAINABLE_PREFIXES)]


def _perturb_adapters_(net) -> None:
    """Give the adapters non-trivial values (they start as the identity update)."""
    names = set(_adapter_names(net))
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, param in net.named_parameters():
            if name in names:
                param.add_(0.2 * torch.randn(param.shape, generator=generator))


def _train_steps(net, steps: int = 3) -> None:
    net.train()
    optimiser = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-2)
    target = torch.rand(2, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(5)) > 0.9
    for _ in range(steps):
        out = net(_images())
        loss = (
            torch.nn.functional.binary_cross_entropy_with_logits(out["mask_logits"], target.float())
            + out["edge_probs"].square().mean()
        )
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()


def _check_training_changes_only_delta(net) -> None:
    before = {k: v.clone() for k, v in net.state_dict().items()}
    _train_steps(net)
    after = net.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    delta = set(delta_keys(net))
    adapters = set(_adapter_names(net))
    assert adapters and changed <= delta, sorted(changed - delta)[:5]
    assert adapters <= changed, sorted(adapters - changed)[:5]
    assert any(k.startswith("image_encoder.wpmd.") for k in changed)
    assert any(k.startswith("mask_decoder.") for k in changed)
    base = [k for k in before if ".base_layer." in k]
    assert base and not any(k in changed for k in base)


@pytest.mark.parametrize("method", ["lora", "loha", "ia3"])
def test_vit_training_changes_only_adapters_wpmd_decoder(method: str) -> None:
    net = _vit(0)
    reference = net.eval()(_images())["mask_logits"].detach()
    apply_peft(net, _peft_cfg(method))
    assert has_peft(net)
    # default initialisations start from the base network's function
    torch.testing.assert_close(net.eval()(_images())["mask_logits"], reference)
    frozen = [n for n, p in net.named_parameters() if not p.requires_grad]
    assert any(n.startswith("image_encoder.patch_embed.") for n in frozen)
    assert any(n.startswith("image_encoder.neck.") for n in frozen)
    _check_training_changes_only_delta(net)


def _reload_and_merge(build, method: str, tmp_path: Path) -> None:
    base = build(0)
    base_state = {k: v.clone() for k, v in base.state_dict().items()}
    apply_peft(base, _peft_cfg(method))
    _train_steps(base, steps=2)
    _perturb_adapters_(base)
    base.eval()
    expected = base(_images(3))["mask_logits"].detach()
    file = tmp_path / "adapter.pt"
    torch.save(adapter_state_dict(base), file)
    delta = torch.load(file, map_location="cpu", weights_only=True)
    assert len(delta) < len(base.state_dict())

    fresh = build(1)  # other random init: everything must come from base weights + delta
    fresh.load_state_dict(base_state, strict=True)
    apply_peft(fresh, _peft_cfg(method))
    load_adapter_state_dict(fresh, delta, source=file)
    fresh.eval()
    torch.testing.assert_close(fresh(_images(3))["mask_logits"], expected, rtol=1e-5, atol=1e-5)

    plain_keys = set(base_state)
    merged = merge_peft(fresh)
    assert not has_peft(merged) and set(merged.state_dict()) == plain_keys
    merged_out = merged(_images(3))["mask_logits"]
    # merging changes only the float rounding: agree to 1e-3 of the logit range
    scale = float(expected.abs().max())
    torch.testing.assert_close(merged_out, expected, rtol=1e-3, atol=1e-3 * max(scale, 1.0))
    unadapted = build(0).eval()
    assert not torch.allclose(unadapted(_images(3))["mask_logits"], expected, atol=1e-3)


@pytest.mark.parametrize("method", ["lora", "loha", "ia3"])
def test_vit_adapter_only_reload_and_merge(method: str, tmp_path: Path) -> None:
    _reload_and_merge(_vit, method, tmp_path)


def test_tiny_vit_lora(tmp_path: Path) -> None:
    net = _tiny(0)
    apply_peft(net, _peft_cfg("lora"))
    adapted = {n.rsplit(".lora_A", 1)[0] for n in _adapter_names(net) if ".lora_A." in n}
    # TinyViT-5M: stages 1-3 hold 2 + 6 + 2 blocks with qkv, proj, fc1, fc2 each
    assert len(adapted) == 10 * 4
    assert all(n.startswith("image_encoder.layers.") for n in adapted)
    _check_training_changes_only_delta(net)
    _reload_and_merge(_tiny, "lora", tmp_path)


def test_none_leaves_network_untouched() -> None:
    net = _vit(0)
    keys = list(net.state_dict())
    assert apply_peft(net, _peft_cfg("none")) is net and apply_peft(net, None) is net
    assert list(net.state_dict()) == keys and not has_peft(net)
    with pytest.raises(ValueError, match="no peft adapters"):
        adapter_state_dict(net)


def test_bad_configs_and_checkpoints(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="peft.method"):
        apply_peft(_vit(0), {"method": "prefix"})
    with pytest.raises(ValueError, match="peft.target_modules"):
        apply_peft(_vit(0), {"method": "lora", "target_modules": ["qkv", "fc9"]})
    with pytest.raises(ValueError, match="peft.options"):
        apply_peft(_vit(0), {"method": "lora", "target_modules": ["qkv"], "options": {"rank": 4}})
    net = apply_peft(_vit(0), _peft_cfg("lora"))
    with pytest.raises(ValueError, match="already carries"):
        apply_peft(net, _peft_cfg("lora"))
    delta = adapter_state_dict(net)
    wrong_rank = apply_peft(_vit(0), {**_peft_cfg("lora"), "options": {"r": 2}})
    with pytest.raises(CheckpointError, match="adapter.pt.*shape mismatches"):
        load_adapter_state_dict(wrong_rank, delta, source=tmp_path / "adapter.pt")
    delta.pop(next(iter(delta)))
    with pytest.raises(CheckpointError, match="missing keys"):
        load_adapter_state_dict(net, delta, source="x.ckpt")
    with pytest.raises(CheckpointError, match="x.ckpt.*model.net.checkpoint"):
        require_base_weights("x.ckpt", None)
    with pytest.raises(CheckpointError, match="does not exist"):
        require_base_weights("x.ckpt", tmp_path / "sam_vit_b.pth")
    # a trained parameter outside the delta would be lost in an adapter-only checkpoint
    net.image_encoder.patch_embed.proj.weight.requires_grad_(True)
    with pytest.raises(ValueError, match="outside the adapter delta"):
        adapter_state_dict(net)


def test_train_with_lora_writes_adapter_only_checkpoints_that_evaluate_rebuilds(tmp_path) -> None:
    """`peft=lora` through train.py: last.ckpt holds only the delta, `from_checkpoint` rebuilds
    the module on the base weights and gives the trained outputs; without them, a clear error."""
    from conftest import TINY_TRAIN_OVERRIDES, compose_config

    from irsam.lit_module import IRSAMLitModule
    from irsam.models import save_model_weights
    from irsam.tasks.train import train

    base = tmp_path / "base.pt"
    save_model_weights(build_irsam_tiny(encoder_size=128), base)
    cfg = compose_config(
        "train",
        tmp_path / "run",
        list(TINY_TRAIN_OVERRIDES) + ["peft=lora", f"model.net.checkpoint={base}", "test=false"],
    )
    _, objects = train(cfg)
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    stored = torch.load(last, map_location="cpu", weights_only=True)
    assert stored[IRSAMLitModule.ADAPTER_ONLY] is True
    assert any("lora_A" in k for k in stored["state_dict"])
    assert len(stored["state_dict"]) < len(objects["model"].state_dict()) / 2
    module = IRSAMLitModule.from_checkpoint(last)
    images = torch.rand(1, 3, 64, 64) * 255
    trained = objects["model"].eval()
    with torch.no_grad():
        torch.testing.assert_close(module(images)["mask_logits"], trained(images)["mask_logits"])
    base.unlink()
    with pytest.raises(CheckpointError, match=r"base SAM/MobileSAM weights"):
        IRSAMLitModule.from_checkpoint(last)
