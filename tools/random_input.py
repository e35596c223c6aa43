#!/usr/bin/env python3
"""Writes a seeded uniform [-1, 1) float32 tensor as .npy: random_input.py OUT DIM..."""
import sys

import numpy as np

out, *dims = sys.argv[1:]
np.save(out, np.random.default_rng(0).uniform(-1, 1, [int(d) for d in dims]).astype("<f4"))
