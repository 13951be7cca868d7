# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Unit tests of the one-shot mode (LFM, PPCF, TLE, annotations, reference state) with a stub
backbone whose features and decoder outputs are known."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import PROJECT_ROOT
from hydra import compose, initialize_config_dir

from irsam.data.io import write_png
from irsam.oneshot import (
    BoxAnnotation,
    MaskAnnotation,
    OneShotConfig,
    OneShotSegmenter,
    PointAnnotation,
    ReferenceState,
)
from irsam.oneshot.annotations import annotation_to_mask, mask_to_annotation, parse_annotation
from irsam.oneshot.backbone import SamBackbone, SamModelBackbone, build_backbone, build_debug_sam
from irsam.oneshot.lfm import (
    cut_tiles,
    find_peaks,
    mask_cell_weights,
    masked_prototype,
    stitch_maps,
    tile_grid,
    tile_stride,
    upsample_similarity,
    window_sizes,
)
from irsam.oneshot.ppcf import full_frame_masks, local_point, ppcf_masks
from irsam.oneshot.sequence import macro_average
from irsam.oneshot.synthetic_sequence import make_synthetic_sequence
from irsam.oneshot.tle import tle_vote

DISK_RADIUS = 2.0


class StubBackbone(SamModelBackbone):
    """S = 64, g = 16. Features encode cell brightness (bright → channel 0, dark → channel 1);
    the decoder returns a disk of radius 2 around the point it receives (read as x, y) and the
    filled box for a box."""

    def __init__(self) -> None:
        super().__init__(prompt_sam=build_debug_sam(img_size=64, patch_size=4, out_chans=8))

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        value = x[:, :1] * self.pixel_std[0] + self.pixel_mean[0]  # channel 0, 0–255
        cells = F.avg_pool2d(value, self.img_size // self.grid_size)
        bright, dark = F.relu(cells - 128) / 128, F.relu(128 - cells) / 128
        rest = torch.zeros(x.shape[0], 5, self.grid_size, self.grid_size)
        return torch.cat([bright, dark, torch.full_like(cells, 0.05), rest], dim=1)

    def decode_point(self, embedding, point_xy, input_hw, orig_hw):
        rows, cols = torch.meshgrid(
            torch.arange(orig_hw[0]), torch.arange(orig_hw[1]), indexing="ij"
        )
        dist = ((cols - point_xy[0]) ** 2 + (rows - point_xy[1]) ** 2).float().sqrt()
        return torch.where(dist <= DISK_RADIUS, 1.0, -1.0)

    def decode_box(self, embedding, box_xyxy, input_hw, orig_hw):
        x1, y1, x2, y2 = (int(v) for v in box_xyxy)
        logits = -torch.ones(orig_hw)
        logits[max(y1, 0) : y2 + 1, max(x1, 0) : x2 + 1] = 1.0
        return logits


def disk(hw: tuple[int, int], y: float, x: float, radius: float = DISK_RADIUS) -> torch.Tensor:
    """H×W bool disk (clipped to the frame)."""
    rows, cols = torch.meshgrid(torch.arange(hw[0]), torch.arange(hw[1]), indexing="ij")
    return ((rows - y) ** 2 + (cols - x) ** 2).float().sqrt() <= radius


def planted(
    hw: tuple[int, int], targets: list[tuple[int, int]], size: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Dark frame (H×W×3, 0–255) with bright size×size squares at the given (row, col) centres."""
    frame = np.full((*hw, 3), 60.0, np.float32)
    mask = np.zeros(hw, np.uint8)
    for y, x in targets:
        sl = (slice(y - size // 2, y + size // 2 + 1), slice(x - size // 2, x + size // 2 + 1))
        frame[sl] = 250.0
        mask[sl] = 1
    return frame, mask


@pytest.fixture(scope="module")
def stub() -> StubBackbone:
    return StubBackbone().eval().requires_grad_(False)


def small_cfg(**overrides) -> OneShotConfig:
    """Code defaults scaled to 64-px frames (peaks 6 px apart, 4-px border band, no area filter)."""
    values = {"peak_min_distance": 6, "peak_exclude_border": 4, "max_area_ratio": None}
    values.update(overrides)
    return OneShotConfig(**values)


# ---------------------------------------------------------------- windows and tiling
@pytest.mark.parametrize(
    "hw, divisors, windows, tiles",
    [
        ((480, 720), (6, 5, 4), [80, 96, 120], [70, 54, 35]),
        ((480, 720), (2, 3, 4), [240, 160, 120], [12, 20, 35]),
        ((512, 512), (6, 5, 4), [84, 102, 128], [49, 36, 25]),
        ((512, 512), (2, 3, 4), [256, 170, 128], [9, 16, 25]),
        ((720, 1280), (6, 5, 4), [120, 144, 180], [84, 60, 40]),
        ((256, 256), (6, 5, 4), [42, 50, 64], [49, 36, 25]),
    ],
)
def test_window_sizes_and_tile_counts_match_reference_table(hw, divisors, windows, tiles):
    assert window_sizes(*hw, divisors, "height") == windows
    counts = [math.prod(tile_grid(*hw, tile_stride(w, 0.1))) for w in windows]
    assert counts == tiles
    frame = torch.zeros(3, *hw)
    assert [len(cut_tiles(frame, w, tile_stride(w, 0.1))) for w in windows] == tiles


def test_window_from_min_side():
    assert window_sizes(720, 480, (6, 5, 4), "min_side") == [80, 96, 120]
    with pytest.raises(ValueError, match="too small"):
        window_sizes(8, 8, (6,), "height")


def test_cut_tiles_zero_pads_borders():
    frame = torch.rand(3, 23, 31) * 255
    window, stride = 10, 9
    tiles = cut_tiles(frame, window, stride)
    rows, cols = tile_grid(23, 31, stride)
    for t, (r, c) in enumerate((r, c) for r in range(rows) for c in range(cols)):
        y0, x0 = r * stride, c * stride
        expected = torch.zeros(3, window, window)
        crop = frame[:, y0 : y0 + window, x0 : x0 + window]
        expected[:, : crop.shape[1], : crop.shape[2]] = crop
        assert torch.equal(tiles[t], expected)


@pytest.mark.parametrize("hw, window", [((23, 31), 10), ((64, 64), 16), ((50, 37), 12)])
def test_fold_stitching_equals_loop(hw, window):
    stride = tile_stride(window, 0.1)
    rows, cols = tile_grid(*hw, stride)
    maps = torch.rand(rows * cols, window, window, dtype=torch.float64)
    total, count = torch.zeros(hw, dtype=torch.float64), torch.zeros(hw, dtype=torch.float64)
    for t, (r, c) in enumerate((r, c) for r in range(rows) for c in range(cols)):
        y0, x0 = r * stride, c * stride
        h, w = min(window, hw[0] - y0), min(window, hw[1] - x0)
        total[y0 : y0 + h, x0 : x0 + w] += maps[t, :h, :w]
        count[y0 : y0 + h, x0 : x0 + w] += 1
    expected = total / count.clamp_min(1)
    assert torch.allclose(stitch_maps(maps, hw, window, stride).double(), expected, atol=1e-6)


def test_upsample_matrix_equals_interpolate_chain():
    sim = torch.rand(4, 16, 16)
    chain = F.interpolate(sim[:, None], scale_factor=2, mode="bilinear", align_corners=False)
    chain = F.interpolate(chain, size=(64, 64), mode="bilinear", align_corners=False)
    chain = F.interpolate(chain, size=(18, 18), mode="bilinear", align_corners=False)[:, 0]
    assert torch.allclose(upsample_similarity(sim, 64, 18), chain, atol=1e-5)


# ---------------------------------------------------------------- peaks
def test_peak_rules_border_threshold_distance():
    conf = torch.zeros(100, 100)
    conf[50, 50] = 1.0  # global max
    conf[50, 60] = 0.95  # 10 px away: removed by min_distance 20, kept by min_distance 5
    conf[25, 75] = 0.92  # far (the footprint is a square), above 0.9 · max
    conf[70, 30] = 0.85  # below the relative threshold
    conf[5, 50] = 0.99  # inside the 20-px border band
    peaks = find_peaks(conf, "multi", 0.9, 20, 20).tolist()
    assert peaks == [[50, 50], [25, 75]]  # sorted by value
    assert [50, 60] in find_peaks(conf, "multi", 0.9, 5, 20).tolist()
    assert [5, 50] in find_peaks(conf, "multi", 0.9, 20, 0).tolist()
    assert find_peaks(conf, "argmax", border=20).tolist() == [[50, 50]]
    conf[60, 60] = 2.0
    assert find_peaks(conf, "argmax", border=0).tolist() == [[60, 60]]
    assert len(find_peaks(-torch.rand(50, 50) - 0.1, "multi", 0.9, 5, 0)) == 0  # max < 0
    assert len(find_peaks(torch.full((50, 50), 0.3), "multi", 0.9, 5, 0)) == 0  # flat map


def test_config_border_band_and_validation():
    assert OneShotConfig().border_band == 20
    assert OneShotConfig(peak_exclude_border=False).border_band == 0
    assert OneShotConfig(peak_exclude_border=7).border_band == 7
    with pytest.raises(ValueError, match="peak_mode"):
        OneShotConfig(peak_mode="best")
    with pytest.raises(ValueError, match="unknown"):
        OneShotConfig.from_mapping({"windows": [1]})


# ---------------------------------------------------------------- LFM with the stub backbone
def test_lfm_finds_planted_target(stub):
    seg = OneShotSegmenter(stub, small_cfg())
    ref, ref_mask = planted((64, 64), [(20, 30)])
    seg.fit_reference(ref, MaskAnnotation(ref_mask))
    frame, _ = planted((64, 64), [(41, 13)])
    conf = seg.confidence_maps(frame)
    assert conf.shape == (3, 64, 64) and torch.isfinite(conf).all()
    for k in range(3):
        y, x = np.unravel_index(int(conf[k].argmax()), conf[k].shape)
        assert abs(y - 41) <= 2 and abs(x - 13) <= 2


def test_predict_several_targets_near_borders_and_no_target(stub):
    seg = OneShotSegmenter(stub, small_cfg())
    ref, ref_mask = planted((64, 64), [(30, 30)])
    seg.fit_reference(ref, MaskAnnotation(ref_mask))
    frame, _ = planted((64, 64), [(12, 50), (45, 20), (58, 40)])  # (58, 40): 5 px from the bottom
    out = seg.predict(frame)
    assert out.mask.shape == (64, 64) and out.mask.dtype == torch.bool
    assert out.per_scale_masks.shape == (3, 64, 64) and len(out.peaks) == 3
    for y, x in [(12, 50), (45, 20), (58, 40)]:
        assert out.mask[y, x], f"target at {(y, x)} missed"
    assert not out.mask[torch.from_numpy(disk((64, 64), 0, 0, 0).numpy())].any()
    empty = seg.predict(np.zeros((64, 64, 3), np.float32))  # flat map: no local maximum
    assert not empty.mask.any() and all(len(p) == 0 for p in empty.peaks)
    clutter = make_synthetic_sequence(
        num_frames=1, height=64, width=64, target_contrast=0.0
    ).frames[0]
    out = seg.predict(clutter)  # peaks appear (relative threshold); only TLE can suppress them
    assert out.mask.shape == (64, 64) and torch.isfinite(out.conf_maps).all()


def test_frame_of_another_size_reuses_reference_windows(stub):
    seg = OneShotSegmenter(stub, small_cfg())
    ref, ref_mask = planted((64, 64), [(30, 30)])
    state = seg.fit_reference(ref, MaskAnnotation(ref_mask))
    frame, _ = planted((48, 80), [(24, 60)])
    out = seg.predict(frame)
    assert state.window_sizes.tolist() == [10, 12, 16]
    assert out.mask.shape == (48, 80) and out.conf_maps.shape == (3, 48, 80)
    assert out.mask[24, 60]


def test_sub_cell_reference_target_falls_back_without_nan(stub):
    mask = torch.zeros(64, 64)
    mask[33, 33] = 1  # one pixel; one cell is 4 px at L = 64
    weights = mask_cell_weights(mask, 64, 16, "bicubic", 123.675, 58.395)
    assert not weights.any()
    features = torch.randn(8, 16, 16)
    proto = masked_prototype(features, weights, (8, 8))
    assert torch.allclose(proto, F.normalize(features[:, 8, 8], dim=0))
    seg = OneShotSegmenter(stub, small_cfg(window_divisors=(1, 2)))
    frame, _ = planted((64, 64), [])
    frame[33, 33] = 250.0
    state = seg.fit_reference(frame, MaskAnnotation(mask.numpy()))
    assert torch.isfinite(state.prototypes).all()
    assert torch.isfinite(seg.confidence_maps(frame)).all()


def test_area_weights_cover_sub_cell_target():
    mask = torch.zeros(64, 64)
    mask[33, 33] = 1
    weights = mask_cell_weights(mask, 64, 16, "area", 123.675, 58.395)
    assert weights.sum() == pytest.approx(1 / 16) and weights[8, 8] > 0


# ---------------------------------------------------------------- PPCF
@pytest.mark.parametrize("peak", [(2, 30), (61, 30), (30, 1), (30, 62), (1, 1), (62, 63), (32, 32)])
@pytest.mark.parametrize("faithful", [False, True])
def test_ppcf_pastes_at_the_right_offset_near_borders(stub, peak, faithful):
    hw, window = (64, 64), 16
    frame = torch.zeros(3, *hw)
    (mask,) = ppcf_masks(stub, frame, [(peak[0], peak[1], window)], faithful_point_order=faithful)
    y0, x0 = max(peak[0] - 8, 0), max(peak[1] - 8, 0)
    y1, x1 = min(peak[0] + 8, 64), min(peak[1] + 8, 64)
    inside = torch.zeros(hw, dtype=torch.bool)
    inside[y0:y1, x0:x1] = True
    if faithful:  # the local (row, col) is read as (x, y): the disk lands transposed in the crop
        centre = (y0 + (peak[1] - x0), x0 + (peak[0] - y0))
    else:
        centre = peak
    expected = disk(hw, *centre) & inside
    assert torch.equal(mask, expected)
    assert local_point(peak, (y0, y1, x0, x1), faithful) == (
        (float(peak[0] - y0), float(peak[1] - x0))
        if faithful
        else (float(peak[1] - x0), float(peak[0] - y0))
    )


def test_full_frame_ablation_prompts_at_the_peak(stub):
    (mask,) = full_frame_masks(stub, torch.zeros(3, 40, 50), [(5, 44, 16)])
    assert torch.equal(mask, disk((40, 50), 5, 44))
    seg = OneShotSegmenter(stub, small_cfg(ppcf=False))
    ref, ref_mask = planted((64, 64), [(30, 30)])
    seg.fit_reference(ref, MaskAnnotation(ref_mask))
    assert seg.predict(planted((64, 64), [(40, 20)])[0]).mask[40, 20]


# ---------------------------------------------------------------- TLE
def test_tle_vote_and_area_filter():
    hw = (100, 100)
    a, b, c = disk(hw, 50, 50, 2), disk(hw, 50, 51, 2), disk(hw, 20, 20, 2)
    big = disk(hw, 50, 50, 10)
    fused, keep = tle_vote([a, b, c], hw, min_votes=2, max_area_ratio=None)
    assert torch.equal(fused, a & b) and keep.all()
    fused, keep = tle_vote([a, big, c], hw, min_votes=2, max_area_ratio=0.01)  # 100 px limit
    assert keep.tolist() == [True, False, True] and not fused.any()
    fused, _ = tle_vote([a, big, c], hw, min_votes=2, max_area_ratio=None)
    assert torch.equal(fused, a)
    area_13 = disk(hw, 50, 50, 2)  # 13 px: dropped at a 13-px threshold (area ≥ threshold)
    assert tle_vote([area_13], hw, min_votes=1, max_area_ratio=13 / 1e4)[1].tolist() == [False]
    assert tle_vote([area_13], hw, min_votes=1, max_area_ratio=13.01 / 1e4)[1].tolist() == [True]
    fused, keep = tle_vote([], hw)
    assert fused.shape == hw and not fused.any() and len(keep) == 0


# ---------------------------------------------------------------- annotations
def test_point_and_box_give_the_mask_reference(stub):
    frame, _ = planted((64, 64), [(30, 25)])
    windows = window_sizes(64, 64, (6, 5, 4))
    image = torch.from_numpy(frame).permute(2, 0, 1)
    from_point = annotation_to_mask(
        stub, image, PointAnnotation(25, 30), windows, max_area_ratio=None
    )
    assert torch.equal(from_point, disk((64, 64), 30, 25))
    from_box = annotation_to_mask(
        stub, image, BoxAnnotation(23, 28, 27, 32), windows, max_area_ratio=None
    )
    box_mask = torch.zeros(64, 64, dtype=torch.bool)
    box_mask[28:33, 23:28] = True
    assert torch.equal(from_box, box_mask)
    cfg = small_cfg()
    states = [
        OneShotSegmenter(stub, cfg).fit_reference(frame, ann)
        for ann in (
            PointAnnotation(25, 30),
            MaskAnnotation(disk((64, 64), 30, 25).numpy()),
            BoxAnnotation(23, 28, 27, 32),
            MaskAnnotation(box_mask.numpy()),
        )
    ]
    assert torch.equal(states[0].prototypes, states[1].prototypes)
    assert torch.equal(states[2].prototypes, states[3].prototypes)


def test_point_annotation_fallback_when_oversized(stub):
    image = torch.from_numpy(planted((64, 64), [(30, 25)])[0]).permute(2, 0, 1)
    mask = annotation_to_mask(stub, image, PointAnnotation(25, 30), [10], max_area_ratio=1e-3)
    expected = torch.zeros(64, 64, dtype=torch.bool)
    expected[29:32, 24:27] = True  # 13-px disk ≥ 4.1-px limit → 3×3 patch
    assert torch.equal(mask, expected)


def test_parse_annotation(tmp_path):
    assert parse_annotation("3,4") == PointAnnotation(3.0, 4.0)  # Python API form
    assert parse_annotation(" 1, 2, 5, 6") == BoxAnnotation(1.0, 2.0, 5.0, 6.0)
    mask = np.zeros((8, 8), np.uint8)
    mask[2:4, 3:5] = 255
    write_png(tmp_path / "m.png", mask)
    parsed = parse_annotation(str(tmp_path / "m.png"))
    assert isinstance(parsed, MaskAnnotation) and parsed.mask.sum() == 4
    with pytest.raises(ValueError, match="x2 ≥ x1"):
        parse_annotation("5,5,1,1")
    gt = np.zeros((20, 20), np.uint8)
    gt[4:7, 10:14] = 1
    assert mask_to_annotation(gt, "point") == PointAnnotation(11.0, 5.0)
    assert mask_to_annotation(gt, "box") == BoxAnnotation(10.0, 4.0, 13.0, 6.0)


# ---------------------------------------------------------------- reference state, few-shot
def test_reference_state_roundtrip_and_training_free(stub, tmp_path):
    seg = OneShotSegmenter(stub, small_cfg())
    ref, ref_mask = planted((64, 64), [(30, 30)])
    state = seg.fit_reference(ref, MaskAnnotation(ref_mask))
    state.save(tmp_path / "ref.pt")
    raw = torch.load(tmp_path / "ref.pt", weights_only=True)
    assert set(raw) == {"prototypes", "window_sizes", "ref_hw"}
    loaded = ReferenceState.load(tmp_path / "ref.pt")
    assert torch.equal(loaded.prototypes, state.prototypes) and loaded.ref_hw.tolist() == [64, 64]
    frame = planted((64, 64), [(20, 44)])[0]
    before = seg.predict(frame).mask
    fresh = OneShotSegmenter(stub, small_cfg())
    fresh.load_reference(loaded)
    assert torch.equal(fresh.predict(frame).mask, before)
    fresh.train()
    assert not fresh.training and not any(p.requires_grad for p in fresh.parameters())
    assert isinstance(stub, SamBackbone)


@pytest.mark.parametrize("reduce, count", [("mean", 1), ("max", 2)])
def test_few_shot_and_components(stub, reduce, count):
    shots = [planted((64, 64), [(20, 20)]), planted((64, 64), [(40, 44)], size=5)]
    seg = OneShotSegmenter(stub, small_cfg(shots_reduce=reduce))
    state = seg.fit_reference([(f, MaskAnnotation(m)) for f, m in shots])
    assert state.prototypes.shape == (3, count, 8)
    assert torch.allclose(state.prototypes.norm(dim=-1), torch.ones(3, count))
    frame, mask = planted((64, 64), [(20, 20), (40, 44)])
    seg = OneShotSegmenter(stub, small_cfg(shots_reduce=reduce, ref_component="all"))
    assert seg.fit_reference(frame, MaskAnnotation(mask)).prototypes.shape == (3, count, 8)
    assert seg.predict(planted((64, 64), [(10, 50)])[0]).mask[10, 50]


# ---------------------------------------------------------------- sequences, metrics, configs
def test_macro_average_over_sequences():
    rows = [
        {"IoU": 0.5, "nIoU": 0.4, "Pd": 1.0, "Fa": 1e-5},
        {"IoU": 0.3, "nIoU": 0.2, "Pd": 0.5, "Fa": 3e-5},
        {"IoU": 0.1, "nIoU": 0.0, "Pd": float("nan"), "Fa": 2e-5},
    ]
    macro = macro_average(rows)
    assert macro["IoU"] == pytest.approx(0.3) and macro["nIoU"] == pytest.approx(0.2)
    assert macro["Pd"] == pytest.approx(0.75) and macro["Fa"] == pytest.approx(2e-5)


def test_synthetic_sequence_is_deterministic():
    a = make_synthetic_sequence(
        num_frames=3, height=40, width=48, num_targets=3, near_border=True, seed=3
    )
    b = make_synthetic_sequence(
        num_frames=3, height=40, width=48, num_targets=3, near_border=True, seed=3
    )
    assert all(np.array_equal(x, y) for x, y in zip(a.frames, b.frames))
    assert a.frames[0].shape == (40, 48, 3) and a.masks[0].dtype == np.uint8
    assert (
        all(m.sum() > 0 for m in a.masks) and a.masks[0][:, :8].any()
    )  # first target at the border
    assert not np.array_equal(
        a.frames[0], make_synthetic_sequence(num_frames=1, height=40, width=48, seed=4).frames[0]
    )


@pytest.mark.parametrize("preset", ["code", "paper", "faithful", "fast"])
def test_oneshot_config_group_matches_dataclass(preset):
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="oneshot", overrides=[f"oneshot={preset}"])
    from omegaconf import OmegaConf

    values = OmegaConf.to_container(cfg.oneshot)
    params = OneShotConfig.from_mapping(values)
    assert set(values) == set(OneShotConfig.__dataclass_fields__)
    assert params.window_divisors == ((2, 3, 4) if preset == "paper" else (6, 5, 4))
    assert params.faithful_point_order == (preset == "faithful")
    assert (params.lfm_encoder_size is None) == (preset != "fast")


def test_missing_checkpoint_error_names_the_download():
    with pytest.raises(ValueError, match="github.com/ChaoningZhang/MobileSAM"):
        build_backbone(encoder="tiny", checkpoint=None)
    with pytest.raises(ValueError, match="irsam_checkpoint"):
        build_backbone(encoder="irsam", allow_random_weights=True)


class _TwoOutputEncoder(torch.nn.Module):
    """Stands in for IRSAM's encoder: returns (deep, shallow)."""

    img_size = 64

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        deep = F.avg_pool2d(x, 4).repeat(1, 3, 1, 1)[:, :8]
        return deep, torch.zeros(x.shape[0], 4, 16, 16)


def test_irsam_encoder_backbone_uses_the_deep_embedding():
    from irsam.oneshot.backbone import IrsamEncoderBackbone

    prompt_sam = build_debug_sam(img_size=64, patch_size=4, out_chans=8)
    backbone = IrsamEncoderBackbone(_TwoOutputEncoder(), prompt_sam).eval()
    x, hw = backbone.preprocess(torch.rand(2, 3, 40, 64) * 255)
    assert x.shape == (2, 3, 64, 64) and hw == (40, 64) and (x[:, :, 40:] == 0).all()
    features = backbone.encode(x)
    assert features.shape == (2, 8, 16, 16)
    logits = backbone.decode_point(features[:1], (10.0, 5.0), hw, (40, 64))
    assert logits.shape == (40, 64)


def test_select_components_point_inside_near_far_and_box():
    from irsam.oneshot.backbone import select_components

    mask = torch.zeros(20, 20, dtype=torch.bool)
    mask[2:5, 2:5] = True  # component A
    mask[10:12, 14:17] = True  # component B
    only_a = torch.zeros_like(mask)
    only_a[2:5, 2:5] = True
    assert torch.equal(select_components(mask, (3.0, 3.0), 3.0), only_a)  # (x, y) inside A
    assert torch.equal(select_components(mask, (6.0, 4.0), 3.0), only_a)  # 2 px right of A
    assert not select_components(mask, (9.0, 4.0), 3.0).any()  # 5 px from A: nothing
    assert torch.equal(select_components(mask, (0.0, 0.0, 5.0, 5.0), 3.0), only_a)  # box over A
    assert torch.equal(select_components(mask, (0.0, 0.0, 19.0, 19.0), 3.0), mask)
    assert not select_components(torch.zeros_like(mask), (3.0, 3.0), 3.0).any()


class _StubIrsamNet(torch.nn.Module):
    """Stands in for an IRSAM network: a bright pixel is a target (logit = value - 200)."""

    img_size = 64

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("pixel_mean", torch.zeros(3, 1, 1))
        self.register_buffer("pixel_std", torch.ones(3, 1, 1))
        self.image_encoder = _TwoOutputEncoder()

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"mask_logits": images[:, :1] - 200.0}


def test_irsam_backbone_segments_crops_with_its_own_decoder():
    from irsam.oneshot.backbone import IrsamBackbone
    from irsam.oneshot.ppcf import ppcf_masks

    backbone = IrsamBackbone(_StubIrsamNet()).eval()
    assert (backbone.img_size, backbone.grid_size) == (64, 4)
    frame = torch.zeros(3, 48, 48)
    frame[:, 5:8, 40:43] = 255.0  # target near the top-right corner
    frame[:, 30:32, 10:12] = 255.0  # another target, not prompted
    (mask,) = ppcf_masks(backbone, frame, [(6, 41, 16)])
    expected = torch.zeros(48, 48, dtype=torch.bool)
    expected[5:8, 40:43] = True
    assert torch.equal(mask, expected)
    assert backbone.encode(backbone.preprocess(frame[None])[0]).shape == (1, 8, 16, 16)


class _InputRecordingIrsamNet(_StubIrsamNet):
    """The stub network, remembering what it was given."""

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        self.seen = images.clone()
        return super().forward(images)


def test_irsam_backbone_keeps_crops_at_native_scale():
    """A crop smaller than the network's input goes in unresized, on a canvas of its mean colour
    (upsampled 4-6x, real IRSAM weights find no target in a PPCF crop); the logits of that
    corner are the crop's."""
    from irsam.oneshot.backbone import IrsamBackbone

    net = _InputRecordingIrsamNet()
    backbone = IrsamBackbone(net).eval()
    crop = torch.full((3, 16, 12), 10.0)
    crop[:, 3:5, 4:6] = 255.0
    (masks,) = backbone.segment_crops([crop], [[(4.0, 3.0)]], chunk_size=4)
    assert net.seen.shape == (1, 3, 64, 64)
    assert torch.equal(net.seen[0, :, :16, :12], crop)
    assert torch.allclose(net.seen[0, :, 20:, 20:], crop.mean(dim=(1, 2))[:, None, None])
    expected = torch.zeros(16, 12, dtype=torch.bool)
    expected[3:5, 4:6] = True
    assert torch.equal(masks[0], expected)


def test_standalone_irsam_backbone_needs_no_sam_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="irsam_ppcf"):
        build_backbone(encoder="irsam", irsam_checkpoint="x.ckpt", irsam_ppcf="sam2")
    with pytest.raises(ValueError, match="github.com/ChaoningZhang/MobileSAM"):
        build_backbone(encoder="irsam", irsam_checkpoint="x.ckpt", irsam_ppcf="mobile_sam")


def test_synthetic_sequence_command_writes_frames_and_masks(tmp_path):
    from irsam.data.io import list_images, read_mask
    from irsam.tasks.synthetic_sequence import main

    root = tmp_path / "seq"
    assert main(["--out", str(root), "--frames", "3", "--size", "40", "--seed", "2"]) == 0
    frames, masks = list_images(root / "frames"), list_images(root / "masks")
    assert (
        [p.name for p in frames]
        == [p.name for p in masks]
        == [f"frame_000{i}.png" for i in range(3)]
    )
    assert read_mask(masks[0]).shape == (40, 40) and read_mask(masks[0]).any()
    # as a command (the console script calls sys.exit(main())): exit status 0
    command = [
        sys.executable,
        "-m",
        "irsam.tasks.synthetic_sequence",
        "--out",
        str(tmp_path / "b"),
    ]
    result = subprocess.run(
        [*command, "--frames", "1", "--size", "32"], check=False, capture_output=True
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
