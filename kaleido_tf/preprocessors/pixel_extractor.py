"""A cheap patch feature extractor for demos and tests (no neural network).

Per crop it computes a raw vector of
  - the mean and the standard deviation of R, G and B (6 numbers, scaled to [0, 1]),
  - a joint colour histogram with `bins` levels per channel (bins^3 numbers, summing to 1),
  - the crop averaged down to `grid` x `grid` pixels (grid * grid * 3 numbers, scaled to [0, 1],
    minus 0.5),
and maps it to `feature_size` numbers with a fixed random projection drawn from `seed` (Gaussian,
scaled by 1/sqrt(raw size)). Colour and grey crops, rotated crops and different products therefore
give different features, at a tiny fraction of ResNet-50's cost.
"""

import numpy as np

from kaleido_tf.preprocessors.extractor_base import PatchFeatureExtractor


class PixelStatsPatchExtractor(PatchFeatureExtractor):
    """Colour statistics + downsampled pixels, randomly projected; see the module docstring."""

    name = "pixels"

    def __init__(self, crop_size=64, feature_size=2048, seed=0, grid=8, bins=4):
        super().__init__(crop_size, feature_size)
        if not 1 <= grid <= crop_size:
            raise ValueError(f"grid must be in 1..crop_size, got {grid}")
        self.grid = int(grid)
        self.bins = int(bins)
        self.seed = int(seed)
        self.raw_size = 6 + self.bins**3 + self.grid * self.grid * 3
        rng = np.random.default_rng([self.seed, self.raw_size])
        self.projection = (rng.standard_normal((self.raw_size, self.feature_size)) / np.sqrt(self.raw_size)).astype(
            np.float32
        )
        self._edges = np.linspace(0, crop_size, self.grid + 1).round().astype(np.int64)
        self._levels = ((np.arange(256) * self.bins) // 256).astype(np.uint16)  # pixel value -> level

    def raw_features(self, crops):
        """[N, raw_size] float32 before projection (computed 16 crops at a time)."""
        return np.concatenate([self._raw_chunk(crops[i : i + 16]) for i in range(0, len(crops), 16)])

    def _raw_chunk(self, crops):
        n = crops.shape[0]
        x = crops.astype(np.float32) / 255.0  # [n, S, S, 3]
        mean = x.mean(axis=(1, 2))  # [n, 3]
        std = x.std(axis=(1, 2))  # [n, 3]
        q = self._levels[crops]  # [n, S, S, 3] colour level of each channel
        codes = (q[..., 0] * self.bins + q[..., 1]) * self.bins + q[..., 2]  # [n, S, S]
        k = self.bins**3
        flat = codes.reshape(n, -1).astype(np.int64) + (np.arange(n, dtype=np.int64) * k)[:, None]
        hist = np.bincount(flat.ravel(), minlength=n * k).reshape(n, k).astype(np.float32)
        hist /= float(codes.shape[1] * codes.shape[2])
        e = self._edges
        sums = np.add.reduceat(np.add.reduceat(x, e[:-1], axis=1), e[:-1], axis=2)  # [n, g, g, 3]
        counts = np.diff(e)[:, None] * np.diff(e)[None, :]  # [g, g]
        small = sums / counts[None, :, :, None] - 0.5
        return np.concatenate([mean, std, hist, small.reshape(n, -1)], axis=1)

    def _extract(self, crops):
        return self.raw_features(crops) @ self.projection  # [N, F]

    def describe(self):
        info = super().describe()
        info.update({"seed": self.seed, "grid": self.grid, "bins": self.bins})
        return info
