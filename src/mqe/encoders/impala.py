"""The IMPALA ResNet image encoder (Espeholt et al., 2018) in the sizes OGBench's pixel agents use.

Shapes for a 64x64 input: each stack halves the image (max-pool, stride 2), 64 -> 32 -> 16 -> 8, so
impala_small ends in an 8x8x32 map, 2048 features, and a 512-wide GELU layer: 1,105,056 parameters on
3 channels (OGBench's impala_small has the same count). Frames arrive as uint8 and are scaled to [0, 1]
here, so a dataset never has to hold a float copy of its frames.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mqe.encoders.names import ENCODERS, is_resnet  # noqa: F401  (re-exported)

_conv_init = nn.initializers.xavier_uniform()


class ResNetStack(nn.Module):
    """conv3x3 -> max-pool 3x3 stride 2 -> ``num_blocks`` pre-activation residual blocks.

    A block is x + conv(relu(conv(relu(x)))); no activation after the stack (the next stack's first
    convolution sees the residual sum).
    """

    channels: int
    num_blocks: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.Conv(self.channels, (3, 3), padding="SAME", kernel_init=_conv_init)(x)
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
        for _ in range(self.num_blocks):
            y = nn.Conv(self.channels, (3, 3), padding="SAME", kernel_init=_conv_init)(nn.relu(x))
            y = nn.Conv(self.channels, (3, 3), padding="SAME", kernel_init=_conv_init)(nn.relu(y))
            x = x + y
        return x


class ImpalaEncoder(nn.Module):
    """(..., H, W, C) images, uint8 or float in [0, 255] -> (..., features) float32.

    x / 255 -> stacks -> ReLU [-> LayerNorm] -> flatten -> Dense -> GELU for each width in ``mlp_dims``.
    Leading axes (batch, ensemble, pairs) are kept.
    """

    stack_channels: Sequence[int] = (16, 32, 32)  # one ResNetStack per entry, each halving H and W
    num_blocks: int = 2  # residual blocks per stack
    mlp_dims: Sequence[int] = (512,)  # dense layers after the flattened feature map (GELU after each)
    layer_norm: bool = False  # LayerNorm on the flattened map

    @nn.compact
    def __call__(self, images: jax.Array) -> jax.Array:
        lead = images.shape[:-3]
        x = images.reshape((-1, *images.shape[-3:])).astype(jnp.float32) / 255.0
        for channels in self.stack_channels:
            x = ResNetStack(channels, self.num_blocks)(x)
        x = nn.relu(x)
        x = x.reshape((x.shape[0], -1))
        if self.layer_norm:
            x = nn.LayerNorm(epsilon=1e-6)(x)
        for width in self.mlp_dims:
            x = nn.gelu(nn.Dense(width, kernel_init=_conv_init)(x), approximate=True)
        return x.reshape((*lead, x.shape[-1]))


def feature_dim(name: str) -> int:
    """Width of the features the encoder called ``name`` returns."""
    if is_resnet(name):
        return ENCODERS[name]["widths"][-1]
    return make_encoder(name).mlp_dims[-1]


def make_encoder(encoder: str, **module_kwargs) -> nn.Module:
    """The encoder module called ``encoder`` (a key of ``ENCODERS``); ``module_kwargs`` go to the module
    (e.g. its Flax ``name``)."""
    if encoder not in ENCODERS:
        raise ValueError(f"unknown encoder {encoder!r}; expected one of {sorted(ENCODERS)}")
    spec = {k: v for k, v in ENCODERS[encoder].items() if k != "kind"}
    if is_resnet(encoder):
        from mqe.encoders.resnet import ResNetEncoder

        return ResNetEncoder(**{**spec, **module_kwargs})
    return ImpalaEncoder(**{**spec, **module_kwargs})
