# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""``oneshot=faithful`` against an independent, loop-by-loop transcription of the authors'
algorithm (docs/oneshot.md, "Modes"), with a seeded MobileSAM state dict in the layout of
``mobile_sam.pt``; plus the faithfulness switches (connectivity, resize, mask padding, fallback
logging) and the fast mode."""

from __future__ import annotations

import logging
import math
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import PROJECT_ROOT
from PIL import Image
from scipy import ndimage
from skimage.feature import peak_local_max

from irsam.oneshot import MaskAnnotation, OneShotConfig, OneShotSegmenter, build_backbone
from irsam.oneshot.backbone import resize_images
from irsam.oneshot.lfm import component_centres, mask_cell_weights, window_box
from irsam.oneshot.real_sequence import TargetCrop, make_real_sequence

sys.path.insert(0, str(PROJECT_ROOT))


def mode_config(mode: str, fast_size: int, **overrides) -> OneShotConfig:
    """``benchmarks.oneshot_speed.mode_config`` (the preset files of ``conf/oneshot/``)."""
    from benchmarks.oneshot_speed import mode_config as read_preset

    return read_preset(mode, fast_size, **overrides)


S = 64  # encoder input of the test model (the real one is 1024; the algorithm is the same)
H = W = 64  # frame side: windows 10, 12, 16 px; 49 + 36 + 25 = 110 tiles per frame


@pytest.fixture(scope="module")
def mobile_sam(tmp_path_factory) -> torch.nn.Module:
    """A TinyViT MobileSAM backbone loaded (strictly) from a seeded ``mobile_sam.pt`` file."""
    from benchmarks.oneshot_speed import seeded_mobile_sam_state

    path = tmp_path_factory.mktemp("ckpt") / "mobile_sam.pt"
    torch.save(seeded_mobile_sam_state(seed=3, encoder_size=S), path)
    return build_backbone(encoder="tiny", checkpoint=str(path), encoder_size=S, device="cpu")


def sequence(num_frames: int = 2) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A tiny real-style sequence: smooth clutter, one 3×4 target moving 2 px per frame."""
    rng = np.random.default_rng(5)
    clutter = 90 + 20 * ndimage.gaussian_filter(rng.normal(size=(H + 8, W + 8)), 3) / 0.05
    background = np.clip(clutter, 0, 200)
    target = TargetCrop(signal=np.full((3, 4), 80.0, np.float32), mask=np.ones((3, 4), bool))
    seq = make_real_sequence(
        background, [target], num_frames=num_frames, height=H, width=W, empty_every=0, seed=1
    )
    return seq.frames, seq.masks


def pil_resize(array: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """The authors' resize: a uint8 image through PIL's bilinear filter (as RGB)."""
    return np.asarray(Image.fromarray(array).resize(hw[::-1], Image.Resampling.BILINEAR))


def authors_input(backbone, image_u8: np.ndarray) -> tuple[torch.Tensor, tuple[int, int]]:
    """SamPredictor.set_image: longest side to S with PIL, normalise, pad → 3×S×S."""
    h, w = image_u8.shape[:2]
    scale = S / max(h, w)
    new_hw = (int(h * scale + 0.5), int(w * scale + 0.5))
    x = torch.from_numpy(pil_resize(image_u8, new_hw).copy()).permute(2, 0, 1).float()
    x = (x - backbone.pixel_mean.view(3, 1, 1)) / backbone.pixel_std.view(3, 1, 1)
    return F.pad(x, (0, S - new_hw[1], 0, S - new_hw[0])), new_hw


def authors_prototype(backbone, frame_u8: np.ndarray, mask: np.ndarray, window: int):
    """The authors' reference path: 4-connected first component, clipped crop, PIL-resized
    mask normalised like the image, zero-padded, bicubic to the grid, cells > 0."""
    labels, _ = ndimage.label(mask)  # scipy's default structure: 4-connectivity
    cy, cx = (int(v) for v in ndimage.center_of_mass(mask, labels, 1))
    half = window // 2
    y0, x0 = max(cy - half, 0), max(cx - half, 0)
    y1, x1 = min(cy + half, H), min(cx + half, W)
    x, new_hw = authors_input(backbone, frame_u8[y0:y1, x0:x1])
    features = backbone.encode(x[None])[0]
    crop_mask = np.repeat((mask[y0:y1, x0:x1] * 255).astype(np.uint8)[..., None], 3, axis=-1)
    m = torch.from_numpy(pil_resize(crop_mask, new_hw)[..., 0].copy()).float()
    m = (m - backbone.pixel_mean[0]) / backbone.pixel_std[0]
    m = F.pad(m, (0, S - new_hw[1], 0, S - new_hw[0]))
    grid = features.shape[-1]
    cells = F.interpolate(m[None, None], size=(grid, grid), mode="bicubic")[0, 0] > 0
    proto = features[:, cells].mean(dim=1)
    return F.normalize(proto, dim=0)


def authors_confidence(backbone, frame_u8: np.ndarray, proto: torch.Tensor, window: int):
    """The authors' LFM: black-padded L×L tiles every int(0.9 L) px, cosine map per tile,
    bilinear ×2 → S → L, sum and count of the unpadded parts (tiles encoded in one batch)."""
    stride = int(0.9 * window)
    origins = [(y, x) for y in range(0, H, stride) for x in range(0, W, stride)]
    inputs = []
    for y, x in origins:
        tile = np.zeros((window, window, 3), np.uint8)
        part = frame_u8[y : y + window, x : x + window]
        tile[: part.shape[0], : part.shape[1]] = part
        inputs.append(authors_input(backbone, tile)[0])
    features = backbone.encode(torch.stack(inputs))
    total, count = torch.zeros(H, W), torch.zeros(H, W)
    for (y, x), feature in zip(origins, features):
        sim = torch.einsum("c,chw->hw", proto, F.normalize(feature, dim=0))[None, None]
        sim = F.interpolate(sim, scale_factor=2, mode="bilinear")
        sim = F.interpolate(sim, size=(S, S), mode="bilinear")
        sim = F.interpolate(sim, size=(window, window), mode="bilinear")[0, 0]
        ph, pw = min(window, H - y), min(window, W - x)
        total[y : y + ph, x : x + pw] += sim[:ph, :pw]
        count[y : y + ph, x : x + pw] += 1
    return total / count.clamp_min(1)


class Spy:
    """Records the crops and prompts PPCF hands to ``segment_crops``."""

    def __init__(self, backbone) -> None:
        self.backbone, self.calls = backbone, []

    def __call__(self, crops, prompts, chunk_size, resize_backend="torch", size=None):
        self.calls.append(([tuple(c.shape[1:]) for c in crops], prompts, resize_backend))
        return type(self.backbone).segment_crops(
            self.backbone, crops, prompts, chunk_size, resize_backend, size
        )


def test_faithful_mode_matches_a_transcription_of_the_authors_code(mobile_sam, monkeypatch):
    frames, masks = sequence()
    cfg = mode_config("faithful", 0)
    assert (cfg.faithful_point_order, cfg.resize_backend, cfg.ref_mask_padding) == (
        True,
        "pil",
        "zero_after_norm",
    )
    seg = OneShotSegmenter(mobile_sam, cfg)
    state = seg.fit_reference(frames[0], MaskAnnotation(masks[0]))
    windows = [int(w) for w in state.window_sizes]
    assert windows == [H // 6 - (H // 6) % 2, H // 5 - (H // 5) % 2, H // 4 - (H // 4) % 2]
    frame_u8 = frames[1].astype(np.uint8)
    spy = Spy(mobile_sam)
    monkeypatch.setattr(mobile_sam, "segment_crops", spy)
    out = seg.predict(frames[1])
    for k, window in enumerate(windows):
        proto = authors_prototype(mobile_sam, frames[0].astype(np.uint8), masks[0], window)
        assert torch.allclose(state.prototypes[k, 0], proto, atol=1e-5), f"prototype, L={window}"
        conf = authors_confidence(mobile_sam, frame_u8, proto, window)
        assert torch.allclose(out.conf_maps[k], conf, atol=1e-4), f"confidence map, L={window}"
        c = out.conf_maps[k].numpy()
        expected = peak_local_max(c, min_distance=20, threshold_abs=0.9 * c.max())
        assert np.array_equal(out.peaks[k].numpy(), expected.reshape(-1, 2)), f"peaks, L={window}"
    # PPCF: one L×L crop per peak of every scale, prompted at (row, col) inside the crop
    ((shapes, prompts, backend),) = spy.calls
    expected_shapes, expected_prompts = [], []
    for k, window in enumerate(windows):
        for row, col in out.peaks[k].tolist():
            y0, y1, x0, x1 = window_box((row, col), window, (H, W))
            expected_shapes.append((y1 - y0, x1 - x0))
            expected_prompts.append([(float(row - y0), float(col - x0))])
    assert shapes == expected_shapes and prompts == expected_prompts and backend == "pil"
    assert sum(len(p) for p in out.peaks) >= 1


def test_faithful_prompt_is_swapped_in_a_border_clipped_crop(monkeypatch):
    """At H = 176 the largest window (44) reaches past the 20-px peak band: a target at row 21
    gets a crop clipped at the top, where only the authors' (row, col) order differs."""
    from test_oneshot import StubBackbone, planted

    stub = StubBackbone().eval().requires_grad_(False)
    frame, mask = planted((176, 120), [(21, 60)], size=3)
    calls: list = []

    def spy(crops, prompts, chunk_size, resize_backend="torch", size=None):
        calls.append(prompts)
        return StubBackbone.segment_crops(stub, crops, prompts, chunk_size, resize_backend, size)

    monkeypatch.setattr(stub, "segment_crops", spy)
    found = {}
    for faithful in (True, False):
        calls.clear()
        seg = OneShotSegmenter(stub, OneShotConfig(faithful_point_order=faithful))
        seg.fit_reference(frame, MaskAnnotation(mask))
        out = seg.predict(frame)
        window = int(seg.reference.window_sizes[-1])
        rows_cols = out.peaks[-1].tolist()
        assert rows_cols, "the largest window found no peak"
        row, col = rows_cols[0]
        y0, _, x0, _ = window_box((row, col), window, (176, 120))
        assert y0 == 0 and row - y0 != window // 2  # clipped at the top
        found[faithful] = calls[0][-len(rows_cols)]
        local = (float(row - y0), float(col - x0))
        assert found[faithful] == [local if faithful else local[::-1]]
    assert found[True] != found[False]


def test_reference_centre_uses_4_connectivity_by_default():
    mask = np.zeros((12, 12), np.uint8)
    mask[2, 2] = mask[3, 3] = mask[4, 4] = 1  # a diagonal line: 3 components 4-connected
    mask[8:10, 8:10] = 1
    assert component_centres(mask) == [(2, 2)]
    assert component_centres(mask, connectivity=8) == [(3, 3)]
    assert len(component_centres(mask, "all")) == 4
    assert len(component_centres(mask, "all", connectivity=8)) == 2
    assert OneShotConfig().ref_connectivity == 4
    with pytest.raises(ValueError, match="ref_connectivity"):
        OneShotConfig(ref_connectivity=6)


def test_pil_resize_is_the_8_bit_pil_filter_and_differs_from_torch():
    rng = np.random.default_rng(0)
    tile = rng.integers(0, 256, size=(2, 3, 10, 13)).astype(np.float32)
    pil = resize_images(torch.from_numpy(tile), (37, 48), "pil")
    for b in range(2):
        expected = pil_resize(tile[b].transpose(1, 2, 0).astype(np.uint8), (37, 48))
        assert np.array_equal(pil[b].numpy().transpose(1, 2, 0), expected)
    torch_out = resize_images(torch.from_numpy(tile), (37, 48), "torch")
    assert not torch.equal(pil, torch_out) and (pil - torch_out).abs().max() < 40
    assert torch.equal(pil, pil.round())
    with pytest.raises(ValueError, match="resize_backend"):
        resize_images(torch.from_numpy(tile), (5, 5), "cv2")


def test_mask_padding_quirk_marks_background_cells_in_a_clipped_crop():
    """A 42×39 crop clipped at a border (no target at all): the authors' padding marks cells
    along the pad edge as target; the background padding marks none."""
    mask = torch.zeros(42, 39)
    quirk = mask_cell_weights(mask, 1024, 64, "bicubic", 123.675, 58.395, "zero_after_norm")
    fixed = mask_cell_weights(mask, 1024, 64, "bicubic", 123.675, 58.395, "background")
    assert quirk.sum() > 0 and fixed.sum() == 0
    cols = torch.nonzero(quirk)[:, 1]
    edge = math.ceil(39 * 1024 / 42 / 16)  # first grid column in the pad
    assert ((cols - edge).abs() <= 2).all()  # only at the pad edge
    target = mask.clone()
    target[18:24, 17:22] = 1
    inside = mask_cell_weights(target, 1024, 64, "bicubic", 123.675, 58.395, "background")
    quirk_t = mask_cell_weights(target, 1024, 64, "bicubic", 123.675, 58.395, "zero_after_norm")
    assert inside.sum() > 0 and quirk_t.sum() > inside.sum()
    assert torch.equal(quirk_t.bool() & ~quirk.bool(), inside.bool())


def test_sub_cell_fallback_is_logged_at_debug(caplog):
    from test_oneshot import StubBackbone, planted

    stub = StubBackbone().eval().requires_grad_(False)
    frame, _ = planted((64, 64), [])
    mask = np.zeros((64, 64), np.uint8)
    mask[33, 33] = 1
    frame[33, 33] = 250.0
    seg = OneShotSegmenter(stub, OneShotConfig(window_divisors=(1,), max_area_ratio=None))
    with caplog.at_level(logging.DEBUG, logger="irsam.oneshot.segmenter"):
        seg.fit_reference(frame, MaskAnnotation(mask))
    records = [r for r in caplog.records if "smaller than a feature cell" in r.getMessage()]
    assert records and all(r.levelno == logging.DEBUG for r in records)


@pytest.mark.parametrize("source", ["tiles", "frame"])
def test_fast_mode_encodes_at_the_reduced_size(mobile_sam, source, monkeypatch):
    frames, masks = sequence()
    cfg = mode_config("fast", 32, lfm_source=source)
    assert (cfg.lfm_encoder_size, cfg.ppcf_encoder_size) == (32, 32)
    seg = OneShotSegmenter(mobile_sam, cfg)
    seg.fit_reference(frames[0], MaskAnnotation(masks[0]))
    sides: list[int] = []
    encode = type(mobile_sam).encode

    def spy(self_, x):
        sides.append(int(x.shape[-1]))
        return encode(self_, x)

    monkeypatch.setattr(type(mobile_sam), "encode", spy)
    out = seg.predict(frames[1])
    assert set(sides) == {32} and out.mask.shape == (H, W)
    assert out.conf_maps.shape == (3, H, W) and torch.isfinite(out.conf_maps).all()
    if source == "frame":
        assert torch.allclose(out.conf_maps[0], out.conf_maps[1])  # one prototype, one map
        assert sides[0] == 32 and len(sides) <= 2  # one frame pass (+ one PPCF batch)
    with pytest.raises(ValueError, match="multiple of 16"):
        OneShotConfig(lfm_encoder_size=100)


def test_speed_benchmark_prints_the_side_by_side_table(tmp_path, capsys):
    from test_oneshot_e2e import fake_sirst_root

    from benchmarks.oneshot_speed import main

    data = fake_sirst_root(tmp_path / "data", count=3, size=48)
    argv = ["--data-root", str(data), "--sequences", "1", "--frames", "2", "--size", "48"]
    argv += ["--image-size", "32", "--fast-size", "16", "--modes", "faithful,fast_frame"]
    assert main([*argv, "--project-to", "0"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert lines[0].startswith("| mode | frames/s") and len(lines) == 3  # header, 2 modes
    faithful, fast = (line.split("|")[1:-1] for line in lines[1:])
    assert faithful[0].strip() == "faithful" and float(faithful[2]) == 1.0
    assert fast[3].strip().endswith("@16") and float(fast[1]) > 0
