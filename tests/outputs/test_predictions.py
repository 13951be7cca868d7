# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""irsam.outputs.predictions: the mask and probability map of a logit map."""

from __future__ import annotations

import warnings

import numpy as np

from irsam.outputs.predictions import binarise_logits


def test_probabilities_of_extreme_logits_without_overflow_warnings() -> None:
    """A numerically stable sigmoid: logits of ±1000 (any saturated network) give 0 and 1
    without NumPy's "overflow in exp"; float32 in, float32 out."""
    logits = np.array([[-1000.0, -30.0, 0.0], [2.0, 30.0, 1000.0]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mask, prob = binarise_logits(logits, 0.0)
    assert prob.dtype == np.float32
    assert mask.tolist() == [[False, False, False], [True, True, True]]
    expected = 1.0 / (1.0 + np.exp(-logits.astype(np.float64).clip(-50, 50)))
    np.testing.assert_allclose(prob, expected, rtol=1e-6, atol=1e-7)
