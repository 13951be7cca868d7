# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""What the tools write for people to look at: prediction files and ``targets.csv``
(:mod:`~irsam.outputs.predictions`), overlays and panels (:mod:`~irsam.outputs.pictures`),
frame-to-frame tracks and overlay videos (:mod:`~irsam.outputs.tracking`), and the Lightning
callbacks writing them during a run (:mod:`~irsam.outputs.writers`)."""

from irsam.outputs.pictures import (
    DETECTION,
    FALSE_ALARM,
    HIT,
    MISSED,
    add_legend,
    legend_entries,
    overlay,
    panel,
    target_regions,
    to_uint8_rgb,
)
from irsam.outputs.predictions import (
    TARGET_COLUMNS,
    TRACK_COLUMNS,
    target_rows,
    write_prediction,
    write_targets_csv,
)
from irsam.outputs.tracking import (
    OverlayVideoWriter,
    Track,
    TrackerState,
    assign_track_ids,
    draw_track_ids,
    update_tracks,
    write_overlay_video,
)
from irsam.outputs.writers import PredictionWriter, SamplePredictionLogger

__all__ = [
    "DETECTION",
    "FALSE_ALARM",
    "HIT",
    "MISSED",
    "TARGET_COLUMNS",
    "TRACK_COLUMNS",
    "OverlayVideoWriter",
    "PredictionWriter",
    "SamplePredictionLogger",
    "Track",
    "TrackerState",
    "add_legend",
    "assign_track_ids",
    "draw_track_ids",
    "legend_entries",
    "overlay",
    "panel",
    "target_regions",
    "target_rows",
    "to_uint8_rgb",
    "update_tracks",
    "write_overlay_video",
    "write_prediction",
    "write_targets_csv",
]
