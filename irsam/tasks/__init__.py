# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Task logic behind the thin entry points train.py, evaluate.py and predict.py."""
