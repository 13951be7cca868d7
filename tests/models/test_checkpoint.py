# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Checkpoint key maps and strict loading, against state dicts the tests write themselves in the
MobileSAM, SAM ViT-B, irsam and Lightning layouts (no real weights needed)."""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

import pytest
import torch
from segment_anything.modeling import (
    ImageEncoderViT,
    MaskDecoder,
    PromptEncoder,
    Sam,
    TwoWayTransformer,
)

from irsam.models import (
    CheckpointError,
    build_irsam_tiny,
    build_irsam_vit,
    build_irsam_vit_b,
    build_mobile_sam,
    build_prompt_sam,
    load_checkpoint,
    save_model_weights,
)

SIZE = 128  # internal resolution of the TinyViT tests
VIT_SIZE = 256  # ViT-B test: segment-anything encoder built at 256 (16×16 grid) for CPU speed


def _randomise_(model: torch.nn.Module) -> None:
    """Random values everywhere (incl. BN statistics, zero-initialised tables), fixed seed."""
    torch.manual_seed(1)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                if name.endswith("running_var"):
                    tensor.uniform_(0.5, 1.5)
                else:
                    tensor.normal_(0.0, 0.05 if tensor.ndim > 1 else 0.2)


@pytest.fixture(scope="module")
def mobile_sam_file(tmp_path_factory) -> tuple[Path, Sam]:
    """A ``mobile_sam.pt``-layout file from our promptable TinyViT SAM, plus an ImageNet head."""
    sam = build_prompt_sam(encoder="tiny", encoder_size=SIZE)
    _randomise_(sam)
    state = sam.state_dict()
    state["image_encoder.norm_head.weight"] = torch.ones(320)
    state["image_encoder.norm_head.bias"] = torch.zeros(320)
    state["image_encoder.head.weight"] = torch.zeros(1000, 320)
    state["image_encoder.head.bias"] = torch.zeros(1000)
    path = tmp_path_factory.mktemp("ckpt") / "mobile_sam.pt"
    torch.save(state, path)
    return path, sam


@pytest.fixture(scope="module")
def sam_vit_b_file(tmp_path_factory) -> tuple[Path, Sam]:
    """A ``sam_vit_b``-layout file from segment-anything's own modules (ViT-B settings, 256 px)."""
    torch.manual_seed(0)
    grid = VIT_SIZE // 16
    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=12,
            embed_dim=768,
            img_size=VIT_SIZE,
            mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=12,
            patch_size=16,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=[2, 5, 8, 11],
            window_size=14,
            out_chans=256,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=256,
            image_embedding_size=(grid, grid),
            input_image_size=(VIT_SIZE, VIT_SIZE),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8),
            transformer_dim=256,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
        ),
    ).eval()
    with torch.no_grad():  # pos_embed and rel-pos tables are zero-initialised: make them matter
        sam.image_encoder.pos_embed.normal_(0, 0.1)
        for name, param in sam.image_encoder.named_parameters():
            if "rel_pos" in name:
                param.normal_(0, 0.1)
    path = tmp_path_factory.mktemp("ckpt") / "sam_vit_b.pth"
    torch.save(sam.state_dict(), path)
    return path, sam


def test_mobile_sam_layout(mobile_sam_file) -> None:
    """Names and shapes of our TinyViT SAM equal MobileSAM's layout (docs/model.md §7)."""
    path, _ = mobile_sam_file
    state = torch.load(path, weights_only=True)
    prefixes = [
        "image_encoder.patch_embed.seq.0.c.",
        "image_encoder.patch_embed.seq.0.bn.",
        "image_encoder.patch_embed.seq.2.c.",
        "image_encoder.patch_embed.seq.2.bn.",
        *[
            f"image_encoder.layers.0.blocks.{b}.conv{i}.{p}."
            for b in (0, 1)
            for i in (1, 2, 3)
            for p in ("c", "bn")
        ],
        *[
            f"image_encoder.layers.{s}.downsample.conv{i}.{p}."
            for s in (0, 1, 2)
            for i in (1, 2, 3)
            for p in ("c", "bn")
        ],
        *[
            f"image_encoder.layers.{s}.blocks.{b}.{m}."
            for s, depth in ((1, 2), (2, 6), (3, 2))
            for b in range(depth)
            for m in (
                "attn.norm",
                "attn.qkv",
                "attn.proj",
                "mlp.norm",
                "mlp.fc1",
                "mlp.fc2",
                "local_conv.c",
                "local_conv.bn",
            )
        ],
        *[f"image_encoder.neck.{i}." for i in range(4)],
        "prompt_encoder.point_embeddings.3.",
        "prompt_encoder.not_a_point_embed.",
        "prompt_encoder.mask_downscaling.",
        "mask_decoder.transformer.layers.1.",
        "mask_decoder.transformer.final_attn_token_to_image.",
        "mask_decoder.transformer.norm_final_attn.",
        "mask_decoder.output_upscaling.3.",
        "mask_decoder.output_hypernetworks_mlps.3.layers.2.",
        "mask_decoder.iou_prediction_head.layers.2.",
    ]
    for prefix in prefixes:
        assert any(k.startswith(prefix) for k in state), f"missing {prefix}*"
    assert not any("attention_bias_idxs" in k for k in state)
    assert not any(k.startswith("image_encoder.layers.3.downsample") for k in state)
    shapes = {
        "image_encoder.patch_embed.seq.0.c.weight": (32, 3, 3, 3),
        "image_encoder.patch_embed.seq.2.bn.running_var": (64,),
        "image_encoder.layers.0.blocks.0.conv1.c.weight": (256, 64, 1, 1),
        "image_encoder.layers.0.blocks.0.conv2.c.weight": (256, 1, 3, 3),
        "image_encoder.layers.1.downsample.conv2.c.weight": (160, 1, 3, 3),
        "image_encoder.layers.1.blocks.0.attn.attention_biases": (4, 49),
        "image_encoder.layers.2.blocks.5.attn.attention_biases": (5, 196),
        "image_encoder.layers.3.blocks.1.attn.qkv.weight": (960, 320),
        "image_encoder.layers.3.blocks.1.mlp.fc1.weight": (1280, 320),
        "image_encoder.layers.2.blocks.0.local_conv.c.weight": (160, 1, 3, 3),
        "image_encoder.neck.0.weight": (256, 320, 1, 1),
        "image_encoder.neck.1.weight": (256,),
        "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix": (2, 128),
        "prompt_encoder.no_mask_embed.weight": (1, 256),
        "mask_decoder.iou_token.weight": (1, 256),
        "mask_decoder.mask_tokens.weight": (4, 256),
    }
    for key, shape in shapes.items():
        assert tuple(state[key].shape) == shape, key
    encoder_params = sum(
        v.numel()
        for k, v in state.items()
        if k.startswith("image_encoder.")
        and "head" not in k
        and "running" not in k
        and "num_batches" not in k
    )
    assert abs(encoder_params - (6.066e6 - 0.322e6)) < 0.01e6  # §6: 6.066 M incl. the 0.322 M head


def test_irsam_tiny_loads_mobile_sam(mobile_sam_file) -> None:
    path, sam = mobile_sam_file
    model = build_irsam_tiny(encoder_size=SIZE).eval()
    report = load_checkpoint(model, path)
    assert report.kind == "sam"
    assert set(report.ignored) >= {
        "image_encoder.head.weight",
        "image_encoder.norm_head.bias",
        "prompt_encoder.not_a_point_embed.weight",
    }
    assert all(
        k.startswith(
            (
                "image_encoder.wpmd.",
                "mask_decoder.edge",
                "mask_decoder.embedding_",
                "mask_decoder.compress_vit_feat",
            )
        )
        for k in report.new
    )
    assert any(k.startswith("image_encoder.wpmd.3.") for k in report.new)
    assert "pe_layer.positional_encoding_gaussian_matrix" in report.loaded
    assert len(report.loaded) + len(report.new) == len(model.state_dict())
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        deep, shallow = model.image_encoder(x)
        expected = sam.image_encoder(x)
    torch.testing.assert_close(deep, expected, atol=1e-5, rtol=1e-4)
    assert shallow.shape == (2, 160, SIZE // 16, SIZE // 16)


def test_baseline_decoder_equals_sam_mask_decoder(mobile_sam_file) -> None:
    """The batched prompt-free decoder equals SAM's MaskDecoder without prompts (token 0)."""
    path, sam = mobile_sam_file
    model = build_mobile_sam(encoder_size=SIZE, checkpoint=str(path)).eval()
    x = torch.rand(2, 3, SIZE, SIZE) * 255
    with torch.no_grad():
        deep, _ = model.encode(x)
        ours = model.mask_decoder(
            image_embeddings=deep,
            image_pe=model.pe_layer(deep.shape[-2:]).unsqueeze(0),
            dense_prompt_embeddings=model.no_mask_embed.weight.reshape(1, -1, 1, 1),
        )["mask_logits"]
        expected = []
        for i in range(2):
            sparse, dense = sam.prompt_encoder(points=None, boxes=None, masks=None)
            masks, _ = sam.mask_decoder(
                image_embeddings=deep[i : i + 1],
                image_pe=sam.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=False,
            )
            expected.append(masks)
    torch.testing.assert_close(ours, torch.cat(expected), atol=1e-4, rtol=1e-4)


def test_prompt_sam_loads_strictly(mobile_sam_file) -> None:
    path, sam = mobile_sam_file
    prompt = build_prompt_sam(encoder="tiny", encoder_size=SIZE, checkpoint=str(path))
    for key, value in sam.state_dict().items():
        assert torch.equal(prompt.state_dict()[key], value), key


def test_irsam_vit_b_loads_sam_vit_b(sam_vit_b_file) -> None:
    path, sam = sam_vit_b_file
    model = build_irsam_vit_b(
        encoder_size=VIT_SIZE, pretrain_image_size=VIT_SIZE, checkpoint=str(path)
    ).eval()
    taps = {}
    sam.image_encoder.blocks[2].register_forward_hook(lambda m, i, o: taps.setdefault("shallow", o))
    x = torch.randn(1, 3, VIT_SIZE, VIT_SIZE)
    with torch.no_grad():
        deep, shallow = model.image_encoder(x)
        expected = sam.image_encoder(x)
    torch.testing.assert_close(deep, expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(shallow, taps["shallow"].permute(0, 3, 1, 2), atol=1e-4, rtol=1e-4)


def test_vit_b_file_into_tiny_model_names_both(sam_vit_b_file) -> None:
    path, _ = sam_vit_b_file
    with pytest.raises(CheckpointError) as info:
        build_irsam_tiny(encoder_size=SIZE, checkpoint=str(path))
    message = str(info.value)
    assert str(path) in message and "SAM ViT-B" in message and "TinyViT-5M" in message


def test_wrong_vit_size_shape_mismatch(tmp_path: Path) -> None:
    small = {
        "depth": 2,
        "num_heads": 2,
        "global_attn_indexes": (1,),
        "pretrain_image_size": 64,
        "encoder_size": 64,
    }
    path = tmp_path / "vit64.pth"
    save_model_weights(build_irsam_vit(embed_dim=64, **small), path)
    with pytest.raises(CheckpointError, match="shape mismatches") as info:
        load_checkpoint(build_irsam_vit(embed_dim=96, **small), path)
    assert "checkpoint looks like ViT (embed dim 64, depth 2)" in str(info.value)
    assert "model is ViT (embed dim 96, depth 2)" in str(info.value)


def test_irsam_and_lightning_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = build_irsam_tiny(encoder_size=64, wpmd_stages=(1,))
    _randomise_(source)
    source.eval()
    images = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        expected = source(images)["mask_logits"]
    flat = tmp_path / "weights.pt"
    save_model_weights(source, flat)
    lightning = tmp_path / "last.ckpt"
    torch.save(
        {
            "epoch": 3,
            "global_step": 10,
            "state_dict": {
                **{f"net.{k}": v for k, v in source.state_dict().items()},
                "loss.weights": torch.ones(2),
            },
        },
        lightning,
    )
    for file, kind in ((flat, "irsam"), (lightning, "lightning")):
        target = build_irsam_tiny(encoder_size=64, wpmd_stages=(1,)).eval()
        report = load_checkpoint(target, file)
        assert report.kind == kind and not report.new
        assert report.ignored == (("loss.weights",) if kind == "lightning" else ())
        with torch.no_grad():
            torch.testing.assert_close(target(images)["mask_logits"], expected)
    with pytest.raises(
        CheckpointError, match="missing keys"
    ):  # irsam files load strictly (no WPMD at stage 2)
        load_checkpoint(build_irsam_tiny(encoder_size=64, wpmd_stages=(1, 2)), flat)


def test_unexpected_key_fails(tmp_path: Path, mobile_sam_file) -> None:
    path, _ = mobile_sam_file
    state = torch.load(path, weights_only=True)
    state["mask_decoder.extra_head.weight"] = torch.zeros(3)
    bad = tmp_path / "extra.pt"
    torch.save(state, bad)
    with pytest.raises(CheckpointError, match="unexpected keys") as info:
        load_checkpoint(build_irsam_tiny(encoder_size=SIZE), bad)
    assert str(bad) in str(info.value) and "mask_decoder.extra_head.weight" in str(info.value)


def test_unreadable_files(tmp_path: Path, mobile_sam_file) -> None:
    path, _ = mobile_sam_file
    model = build_mobile_sam(encoder_size=64)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    text = tmp_path / "notes.pth"
    text.write_text("this is not a checkpoint\n")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    pickled = tmp_path / "object.pt"
    torch.save({"args": argparse.Namespace(lr=1)}, pickled)
    listed = tmp_path / "list.pt"
    torch.save([torch.zeros(1)], listed)
    cases = [
        (truncated, "truncated or corrupt"),
        (text, "text file"),
        (empty, "empty"),
        (pickled, "weights_only=True"),
        (listed, "not a state dict"),
    ]
    for file, problem in cases:
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(model, file)
        assert str(file) in str(info.value) and problem in str(info.value), str(info.value)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(model, tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="not 'lightning'"):
        load_checkpoint(model, path, kind="lightning")


def _authors_irsam_state(sam: Sam) -> dict[str, torch.Tensor]:
    """A state dict in the layout of the authors' ``build_sam_IRSAM()`` (IPIC-Lab/IRSAM).

    Their model is MobileSAM's TinyViT (ImageNet head included, no WPMD), SAM's full prompt
    encoder plus a second ``pe_layer_2`` PE of 256 // 8 = 32 features, and an edge decoder that
    always builds the shallow ``compress_vit_feat`` branch (ConvT 160→256, LN2d, ConvT 256→32).
    Key names and shapes follow their ``build_IRSAM.py``, ``prompt_encoder.py`` and
    ``IRSAM_decoder.py``; values are seeded random numbers.
    """
    generator = torch.Generator().manual_seed(3)
    state = {
        k: v.clone() for k, v in sam.state_dict().items() if k.startswith(("image_", "prompt_"))
    }
    state["prompt_encoder.pe_layer_2.positional_encoding_gaussian_matrix"] = torch.randn(
        2, 32, generator=generator
    )
    for name, shape in {
        "image_encoder.norm_head.weight": (320,),
        "image_encoder.norm_head.bias": (320,),
        "image_encoder.head.weight": (1000, 320),
        "image_encoder.head.bias": (1000,),
    }.items():
        state[name] = torch.randn(*shape, generator=generator)
    decoder = build_irsam_tiny(encoder_size=SIZE, wpmd=False, gad_fusion="deep+shallow")
    for name, value in decoder.mask_decoder.state_dict().items():
        state[f"mask_decoder.{name}"] = torch.randn(value.shape, generator=generator)
    return state


def test_authors_irsam_layout_loads_strictly_into_gad_deep(mobile_sam_file, tmp_path) -> None:
    """The authors' checkpoint layout loads into ``gad_fusion=deep`` with the extra keys ignored
    by name and reported; every other key is loaded or new (WPMD) and nothing else is tolerated."""
    _, sam = mobile_sam_file
    state = _authors_irsam_state(sam)
    assert state["mask_decoder.compress_vit_feat.0.weight"].shape == (160, 256, 2, 2)
    path = tmp_path / "irsam_authors.pth"
    torch.save(state, path)
    model = build_irsam_tiny(encoder_size=SIZE, gad_fusion="deep").eval()
    report = load_checkpoint(model, path)
    assert "prompt_encoder.pe_layer_2.positional_encoding_gaussian_matrix" in report.ignored
    assert {
        f"mask_decoder.compress_vit_feat.{k}" for k in ("0.weight", "1.bias", "3.weight")
    } <= set(report.ignored)
    assert all(k.startswith("image_encoder.wpmd.") for k in report.new)
    loaded = model.state_dict()
    torch.testing.assert_close(
        loaded["mask_decoder.edge_token.weight"], state["mask_decoder.edge_token.weight"]
    )
    torch.testing.assert_close(
        loaded["pe_layer.positional_encoding_gaussian_matrix"],
        state["prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"],
    )
    # An unknown extra key is still an error naming the file.
    state["mask_decoder.neg_mlp.layers.0.weight"] = torch.zeros(256, 256)
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"irsam_authors\.pth.*unexpected keys"):
        load_checkpoint(build_irsam_tiny(encoder_size=SIZE, gad_fusion="deep"), path)


# The hyperparameters of a synthetic-data irsam_tiny run as train.py stored them while the loader,
# encoder and rendered sizes were all called ``image_size`` (written out by hand, not derived
# from the current code): the module's ``net`` and the datamodule's options.
OLD_LAYOUT_NET = {
    "_target_": "irsam.models.build.build_irsam_tiny",
    "checkpoint": None,
    "image_size": 128,
    "resize_mode": "nearest",
    "wpmd": True,
    "wpmd_stages": [1, 2, 3],
    "wpmd_wavelet": "haar",
    "wpmd_iterations": 1,
    "wpmd_refine": "conv3x3",
    "wpmd_diffusion": True,
    "wpmd_pad_mode": "replicate",
    "gad_fusion": "deep+shallow",
    "edge_upsample": "logits",
    "grad_checkpointing": False,
    "channels_last": False,
}
OLD_LAYOUT_DATAMODULE = {
    "name": "synthetic",
    "root": None,
    "layout": "auto",
    "splits": None,
    "split": "default",
    "val_fraction": 0.1,
    "split_seed": 0,
    "image_size": 96,
    "eval_resize": "resize",
    "pad_divisor": 32,
    "pad_value": 128.0,
    "soft_masks": True,
    "batch_size": 4,
    "eval_batch_size": 4,
    "num_workers": 0,
    "pin_memory": False,
    "persistent_workers": False,
    "cache_images": True,
    "high_bit_norm": "percentile",
    "mask_size_mismatch": "error",
    "augmentation": {"mode": "irsam", "hflip_p": 0.5, "vflip_p": 0.0, "transpose_p": 0.0},
    "synthetic": {"seed": 0, "image_size": 64, "num_train": 8, "num_val": 4, "num_test": 4},
    "preflight": True,
    "preflight_cache": None,
}


def test_checkpoint_with_the_old_size_names_evaluates_as_the_new_layout(tmp_path: Path) -> None:
    """A checkpoint whose hyperparameters call the sizes ``image_size`` rebuilds the same network
    and data sizes as the same weights stored with ``encoder_size`` / ``loader_size`` /
    ``native_size``, and evaluates to the same IoU, nIoU, Pd and Fa."""
    import hydra
    from conftest import TINY_TRAIN_OVERRIDES, compose_config

    from irsam.lit_module import IRSAMLitModule, checkpoint_sizes
    from irsam.tasks.evaluate import evaluate

    torch.manual_seed(0)
    module = hydra.utils.instantiate(compose_config("train", tmp_path, TINY_TRAIN_OVERRIDES).model)
    new_hparams = dict(module.hparams)
    new_datamodule = {
        **{k: v for k, v in OLD_LAYOUT_DATAMODULE.items() if k not in ("image_size", "synthetic")},
        "loader_size": 96,
        "synthetic": {"seed": 0, "native_size": 64, "num_train": 8, "num_val": 4, "num_test": 4},
    }
    assert {k for k in new_hparams["net"] if k != "encoder_size"} | {"image_size"} == set(
        OLD_LAYOUT_NET
    )
    layouts = {
        "new": (new_hparams, new_datamodule),
        "old": ({**new_hparams, "net": OLD_LAYOUT_NET}, OLD_LAYOUT_DATAMODULE),
    }
    metrics = {}
    for name, (hparams, datamodule) in layouts.items():
        path = tmp_path / f"{name}.ckpt"
        torch.save(
            {
                "epoch": 0,
                "global_step": 2,
                "state_dict": module.state_dict(),
                "hyper_parameters": hparams,
                "datamodule_hyper_parameters": datamodule,
                IRSAMLitModule.VAL_IOU_BEST: torch.tensor(0.0),
            },
            path,
        )
        assert checkpoint_sizes(IRSAMLitModule.from_checkpoint(path)) == (96, 128)
        overrides = [
            f"ckpt_path={path}",
            "trainer=cpu",
            "dataset.synthetic.native_size=64",
            "dataset.synthetic.num_test=4",
            "dataset.eval_batch_size=4",
            "metrics.extra=[]",
            "pd_fa_thresholds=null",
            "extras.print_config=false",
            "trainer.enable_progress_bar=false",
        ]
        results, _ = evaluate(compose_config("evaluate", tmp_path / name, overrides))
        metrics[name] = {k: results["metrics"][f"test/{k}"] for k in ("IoU", "nIoU", "Pd", "Fa")}
    assert metrics["new"]["Fa"] > 0, "degenerate comparison: nothing was predicted"
    assert metrics["old"] == metrics["new"]
