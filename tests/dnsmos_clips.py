"""Deterministic speech-like test clips for the DNSMOS tests (no speech synthesis needed)."""

import numpy as np


def speech_like(seed, seconds=9.5, noise=0.003):
    """Voiced harmonics on a gliding f0, a syllable envelope, and white noise of standard
    deviation ``noise * (1 + seed)``; 16 kHz, in [-1, 1]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.3 * t + seed)
    phase = 2 * np.pi * np.cumsum(f0) / 16000
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * (3 + seed % 3) * t), 0, None) ** 2
    return np.clip(0.2 * voiced * envelope + rng.normal(0, noise * (1 + seed), len(t)), -1, 1)
