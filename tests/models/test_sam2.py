# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""SAM 2 Hiera models: equivalence with the sam2 package, official-layout loading, shapes,
gradients, the missing-extra error and a fast_dev_run (skipped without the ``sam2`` extra)."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
import pytest
import torch
from conftest import TINY_TRAIN_OVERRIDES, compose_config
from omegaconf import OmegaConf

from irsam.models.build import (
    build_irsam_sam2_hiera_s,
    build_irsam_sam2_hiera_t,
    build_sam2_hiera_t,
    model_registry,
)
from irsam.models.checkpoints import CheckpointError, load_sam2_checkpoint
from irsam.models.sam2_encoder import import_sam2


@pytest.fixture(scope="module")
def sam2_package():
    """The installed ``sam2`` package (the test is skipped without the extra)."""
    try:
        import_sam2()
    except ImportError:
        pytest.skip('sam2 is not installed (pip install -e ".[sam2]")')
    import sam2

    return sam2


def _reference_model(sam2_package, config: str, overrides: dict | None = None) -> torch.nn.Module:
    """sam2's own SAM2Base from its packaged config, with seeded non-zero weights, eval mode."""
    cfg = OmegaConf.load(Path(sam2_package.__path__[0]) / "configs" / config)
    for key, value in (overrides or {}).items():
        OmegaConf.update(cfg, key, value)
    torch.manual_seed(0)
    model = hydra.utils.instantiate(cfg.model, _recursive_=True)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(torch.randn(tensor.shape, generator=generator) * 0.02)
    return model.eval()


def _save_official(model: torch.nn.Module, path: Path) -> Path:
    """Write ``{"model": state_dict}`` as the official SAM 2 checkpoints are laid out."""
    torch.save({"model": model.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def sam21_tiny(sam2_package, tmp_path_factory):
    """(reference SAM 2.1 Hiera-T model, its official-layout file)."""
    reference = _reference_model(sam2_package, "sam2.1/sam2.1_hiera_t.yaml")
    path = tmp_path_factory.mktemp("sam2") / "sam2.1_hiera_tiny.pt"
    return reference, _save_official(reference, path)


@pytest.mark.parametrize("size", [(128, 128), (96, 160)])
def test_encoder_features_equal_sam2(sam21_tiny, size) -> None:
    """Loaded into irsam_sam2_hiera_t (WPMD built, identity at init), the encoder reproduces
    sam2's image-encoder features: vision_features + no_mem_embed and backbone_fpn[0], [1]."""
    reference, path = sam21_tiny
    model = build_irsam_sam2_hiera_t(encoder_size=128, checkpoint=str(path)).eval()
    x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = reference.image_encoder(x)
        deep, (stride4, stride8) = model.image_encoder(x)
    fpn = expected["backbone_fpn"]
    torch.testing.assert_close(
        deep, expected["vision_features"] + reference.no_mem_embed.view(1, -1, 1, 1)
    )
    torch.testing.assert_close(stride4, fpn[0])
    torch.testing.assert_close(stride8, fpn[1])
    assert deep.shape == (1, 256, size[0] // 16, size[1] // 16)


def test_decoder_mask_path_equals_sam2_decoder(sam21_tiny) -> None:
    """The baseline decoder (mask token 0, conv_s0/conv_s1 skips) equals SAM 2's MaskDecoder
    without prompts. SAM 2's object-score token joins the attention, so the reference decoder is
    sam2's MaskDecoder built without it and filled with the file's other decoder weights."""
    from sam2.modeling.sam.mask_decoder import MaskDecoder
    from sam2.modeling.sam.transformer import TwoWayTransformer

    reference, path = sam21_tiny
    decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8),
        transformer_dim=256,
        iou_head_depth=3,
        iou_head_hidden_dim=256,
        use_high_res_features=True,
        iou_prediction_use_sigmoid=True,
        pred_obj_scores=False,
    ).eval()
    weights = {
        k: v
        for k, v in reference.sam_mask_decoder.state_dict().items()
        if not k.startswith(("obj_score_token.", "pred_obj_score_head."))
    }
    decoder.load_state_dict(weights, strict=True)
    model = build_sam2_hiera_t(encoder_size=128, checkpoint=str(path)).eval()
    x = torch.randn(2, 3, 128, 128, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        deep, shallow = model.image_encoder(x)
        grid = tuple(deep.shape[-2:])
        ours = model.mask_decoder(
            image_embeddings=deep,
            image_pe=model.pe_layer(grid).unsqueeze(0),
            dense_prompt_embeddings=model.no_mask_embed.weight.reshape(1, -1, 1, 1),
            shallow_embeddings=shallow,
        )["mask_logits"]
        prompt_encoder = reference.sam_prompt_encoder
        masks = decoder.predict_masks(
            image_embeddings=deep,
            image_pe=prompt_encoder.pe_layer(grid).unsqueeze(0),
            sparse_prompt_embeddings=torch.zeros(2, 0, 256),
            dense_prompt_embeddings=prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(
                2, -1, *grid
            ),
            repeat_image=False,
            high_res_features=[decoder.conv_s0(shallow[0]), decoder.conv_s1(shallow[1])],
        )[0]
    assert ours.shape == (2, 1, 32, 32)
    torch.testing.assert_close(ours, masks[:, :1])


def test_official_layout_report_and_sam20(sam2_package, sam21_tiny, tmp_path: Path) -> None:
    """SAM 2.1 and SAM 2.0 files load; memory/video parts are ignored by name and reported."""
    reference, path = sam21_tiny
    model = build_irsam_sam2_hiera_t(encoder_size=64)
    report = load_sam2_checkpoint(model, path)
    assert report.kind == "sam2"
    assert any(k.startswith("memory_attention.") for k in report.ignored)
    assert any(k.startswith("memory_encoder.") for k in report.ignored)
    assert "sam_mask_decoder.obj_score_token.weight" in report.ignored
    assert all(not k.startswith("image_encoder.") for k in report.ignored)
    assert {k.split(".")[1] for k in report.new} >= {"wpmd", "edge_token", "compress_vit_feat"}
    assert all(k.startswith(("image_encoder.wpmd.", "mask_decoder.")) for k in report.new)
    torch.testing.assert_close(
        model.mask_decoder.transformer.layers[1].mlp.lin2.weight,
        reference.sam_mask_decoder.transformer.layers[1].mlp.layers[1].weight,
    )
    torch.testing.assert_close(model.image_encoder.no_mem_embed, reference.no_mem_embed)
    torch.testing.assert_close(
        model.no_mask_embed.weight, reference.sam_prompt_encoder.no_mask_embed.weight
    )

    old = _reference_model(sam2_package, "sam2/sam2_hiera_t.yaml")
    baseline = build_sam2_hiera_t(encoder_size=64)
    report20 = load_sam2_checkpoint(baseline, _save_official(old, tmp_path / "sam2_hiera_tiny.pt"))
    assert report20.new == ()
    torch.testing.assert_close(
        baseline.image_encoder.trunk.blocks[3].attn.qkv.weight,
        old.image_encoder.trunk.blocks[3].attn.qkv.weight,
    )


def test_truncated_and_wrong_size_files_fail_naming_the_file(sam21_tiny, tmp_path: Path) -> None:
    _, path = sam21_tiny
    truncated = tmp_path / "sam2.1_hiera_tiny_cut.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="sam2.1_hiera_tiny_cut.pt"):
        build_irsam_sam2_hiera_t(encoder_size=64, checkpoint=str(truncated))
    with pytest.raises(CheckpointError, match=r"sam2\.1_hiera_tiny\.pt.*Hiera-T.*Hiera-S"):
        build_irsam_sam2_hiera_s(encoder_size=64, checkpoint=str(path))


@pytest.mark.parametrize("encoder_size,shape", [(64, (45, 70)), (100, (33, 47)), (96, (64, 64))])
def test_shapes_at_odd_and_non_square_inputs(sam2_package, encoder_size, shape) -> None:
    """Any internal size S (padded to 32 inside) and any input H×W give H×W logits."""
    model = build_irsam_sam2_hiera_t(encoder_size=encoder_size).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, *shape) * 255)
    assert set(out) == {"mask_logits", "edge_probs"}
    assert out["mask_logits"].shape == out["edge_probs"].shape == (2, 1, *shape)
    assert torch.isfinite(out["mask_logits"]).all()
    deep, (stride4, stride8) = model.image_encoder(torch.randn(1, 3, 72, 100))
    assert deep.shape[-2:] == (5, 7) and stride8.shape[-2:] == (10, 14)
    assert stride4.shape[-2:] == (20, 28)


def test_gradients_reach_wpmd_and_decoder(sam2_package) -> None:
    torch.manual_seed(0)
    model = build_irsam_sam2_hiera_t(encoder_size=64, wpmd_stages=[0, 3], grad_checkpointing=True)
    out = model(torch.rand(2, 3, 64, 64) * 255)
    (out["mask_logits"].mean() + out["edge_probs"].mean()).backward()
    for name in (
        "image_encoder.wpmd.0.gamma",
        "image_encoder.wpmd.3.gamma",
        "image_encoder.trunk.blocks.0.attn.qkv.weight",
        "mask_decoder.conv_s0.weight",
        "mask_decoder.conv_s1.weight",
        "mask_decoder.compress_vit_feat.0.weight",
        "mask_decoder.edge_token.weight",
        "mask_decoder.transformer.layers.0.mlp.lin1.weight",
    ):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_missing_extra_names_it(monkeypatch) -> None:
    """Selecting a SAM 2 model without the sam2 package raises an error naming the extra."""
    for name in [key for key in sys.modules if key.startswith("sam2.")] + ["sam2"]:
        monkeypatch.setitem(sys.modules, name, None)  # None in sys.modules = import fails
    with pytest.raises(ImportError, match=r'pip install -e "\.\[sam2\]"'):
        model_registry["irsam_sam2_hiera_t"](encoder_size=64)


def test_fast_dev_run_irsam_sam2_hiera_t(sam2_package, tmp_path: Path) -> None:
    """debug=fdr-style training on the synthetic default with model=irsam_sam2_hiera_t."""
    from irsam.tasks.train import train

    overrides = [o for o in TINY_TRAIN_OVERRIDES if not o.startswith(("model.", "callbacks."))] + [
        "model=irsam_sam2_hiera_t",
        "model.net.encoder_size=64",
        "debug=fdr",
        "trainer.detect_anomaly=false",  # rest of debug=fdr as is; anomaly mode doubles CPU time
    ]
    metrics, _ = train(compose_config("train", tmp_path, overrides))
    assert torch.isfinite(torch.tensor(metrics["train/loss"]))
    assert "train/loss_edge_bce" in metrics and 0.0 <= metrics["test/IoU"] <= 1.0


def test_freeze_layer_decay_and_irsam_round_trip(sam2_package, tmp_path: Path) -> None:
    """freeze=encoder keeps WPMD trainable, layer decay follows the Hiera blocks, and an irsam
    weights file of a SAM 2 model loads back through the same checkpoint option."""
    from irsam.models import apply_freeze
    from irsam.models.checkpoints import save_model_weights
    from irsam.models.param_groups import build_param_groups

    model = build_irsam_sam2_hiera_t(encoder_size=64)
    apply_freeze(model, "encoder")
    params = dict(model.named_parameters())
    assert not params["image_encoder.trunk.blocks.0.attn.qkv.weight"].requires_grad
    assert not params["image_encoder.neck.convs.0.conv.weight"].requires_grad
    assert params["image_encoder.wpmd.2.gamma"].requires_grad
    assert params["mask_decoder.conv_s0.weight"].requires_grad

    model = build_irsam_sam2_hiera_t(encoder_size=64)
    groups = build_param_groups(model, lr=1e-3, weight_decay=0.05, layer_decay=0.5)
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    params = dict(model.named_parameters())
    first, last = "image_encoder.trunk.blocks.0.mlp.layers.0.weight", "mask_decoder.conv_s0.weight"
    assert lr_of[id(params[first])] == pytest.approx(
        1e-3 * 0.5 ** (len(model.image_encoder.trunk.blocks))
    )
    assert lr_of[id(params[last])] == pytest.approx(1e-3)

    with torch.no_grad():
        params["image_encoder.wpmd.1.gamma"].fill_(0.25)
    path = tmp_path / "irsam_sam2_t.pt"
    save_model_weights(model, path)
    again = build_irsam_sam2_hiera_t(encoder_size=64, checkpoint=str(path))
    torch.testing.assert_close(
        again.image_encoder.wpmd["1"].gamma, params["image_encoder.wpmd.1.gamma"]
    )


def test_import_leaves_no_global_hydra(sam2_package) -> None:
    """``import sam2`` initialises Hydra's global instance; import_sam2 undoes it (fresh process,
    since sam2 runs that code only on its first import)."""
    import subprocess

    code = (
        "from hydra.core.global_hydra import GlobalHydra\n"
        "from irsam.models.sam2_encoder import import_sam2\n"
        "import_sam2()\n"
        "import sam2\n"
        "assert not GlobalHydra.instance().is_initialized()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
