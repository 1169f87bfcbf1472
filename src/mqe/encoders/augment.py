"""Random-crop augmentation of image batches, on the device inside the compiled step (OGBench's rule).

With probability ``probability`` per batch (one coin for the whole batch), every image of sample i is
shifted by the same offset (dy_i, dx_i), each uniform on {0, ..., 2 * padding}: the image is padded by
``padding`` pixels on each side, replicating its edge, and the original size is cut out at that offset.
Observations, next observations, goals and waypoints of one sample therefore move together.
Image entries of a batch are those with rank 4 (B, H, W, C); everything else passes through.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp


def random_crop(images: jax.Array, offsets: jax.Array, padding: int) -> jax.Array:
    """(B, H, W, C) images, (B, 2) int offsets in [0, 2 * padding] -> (B, H, W, C), same dtype.

    out[i, y, x] = padded[i, y + dy_i, x + dx_i], with padded the edge-replicated image (pad ``padding``).
    """
    _, h, w, c = images.shape
    padded = jnp.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)), mode="edge")

    def crop(image, offset):
        return jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), (h, w, c))

    return jax.vmap(crop)(padded, offsets)


def augment_batch(key: jax.Array, batch: dict[str, Any], probability: float, padding: int) -> dict[str, Any]:
    """The batch with all its image entries randomly cropped together (see the module docstring)."""
    image_keys = [k for k, v in batch.items() if getattr(v, "ndim", 0) == 4]
    if not image_keys or probability <= 0.0:
        return batch
    k_coin, k_offsets = jax.random.split(key)
    size = batch[image_keys[0]].shape[0]
    offsets = jax.random.randint(k_offsets, (size, 2), 0, 2 * padding + 1)
    apply = jax.random.uniform(k_coin) < probability
    images = {k: batch[k] for k in image_keys}
    cropped = jax.lax.cond(apply, lambda ims: {k: random_crop(v, offsets, padding) for k, v in ims.items()},
                           lambda ims: ims, images)
    return {**batch, **cropped}


@dataclasses.dataclass(frozen=True)
class AugmentedSampler:
    """A batch sampler (anything with ``sample(key, data)``) followed by ``augment_batch``."""

    inner: Any
    probability: float  # per-batch probability of cropping (OGBench's p_aug)
    padding: int = 3  # OGBench's pad: offsets of up to 2 * 3 pixels

    def __post_init__(self):
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"crop probability must be in [0, 1], got {self.probability}")
        if self.padding < 0:
            raise ValueError(f"crop padding must be >= 0, got {self.padding}")

    def sample(self, key: jax.Array, data) -> dict[str, Any]:
        k_sample, k_aug = jax.random.split(key)
        return augment_batch(k_aug, self.inner.sample(k_sample, data), self.probability, self.padding)
