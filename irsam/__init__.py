# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""irsam: fine-tuning IRSAM for infrared small target detection, and one-shot IR sequence
segmentation."""

__version__ = "0.1.0"
