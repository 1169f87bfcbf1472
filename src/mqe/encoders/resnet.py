"""ResNet-34 (He et al., 2016), the MQE paper's Bridge backbone (appendix C.1: "a pretrained ResNet34"), and
ImageNet weights read from the file a user supplies.

The network is torchvision's ``resnet34`` up to its global average pool (512 features), with one change
that the paper leaves open: each BatchNorm is folded into a per-channel affine map (``Affine``: x * scale +
bias), trained like any other parameter. With a batch of 128 robot frames the batch statistics a live
BatchNorm would need are noise, and the folded map computes exactly what the pretrained BatchNorm computes
in inference mode: scale = gamma / sqrt(running_var + eps), bias = beta - running_mean * scale.

Frames arrive as uint8 and are normalised here with ImageNet's per-channel mean and standard deviation
(what the pretrained weights expect). Padding is explicit and symmetric, as in PyTorch (Flax's "SAME"
pads a stride-2 convolution on one side only, which would shift every feature map by a pixel).

Weights: ``load_pretrained(path)`` reads a safetensors file (with the ``safetensors`` package) or an ``.npz``
holding the standard torchvision / timm ``resnet34`` state dict (``conv1.weight``, ``bn1.*``,
``layer{1-4}.{i}.conv{1,2}.weight``, ``layer{1-4}.{i}.bn{1,2}.*``, ``layer{2-4}.0.downsample.{0,1}.*``;
``fc.*`` is ignored), and returns this module's parameters.
"""

from __future__ import annotations

import os
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BN_EPS = 1e-5  # torchvision's BatchNorm2d default


class Affine(nn.Module):
    """x * scale + bias per channel: a BatchNorm in inference mode, folded."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        scale = self.param("scale", nn.initializers.ones, (x.shape[-1],))
        bias = self.param("bias", nn.initializers.zeros, (x.shape[-1],))
        return x * scale + bias


def _conv(features: int, size: int, stride: int, name: str) -> nn.Conv:
    pad = size // 2
    return nn.Conv(features, (size, size), strides=(stride, stride), padding=((pad, pad), (pad, pad)),
                   use_bias=False, kernel_init=nn.initializers.he_normal(), name=name)


class BasicBlock(nn.Module):
    """relu(affine(conv3x3(relu(affine(conv3x3_stride(x))))) + shortcut(x)); the shortcut is a strided 1x1
    convolution and affine when the shape changes (torchvision's ``downsample``)."""

    features: int
    stride: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        y = nn.relu(Affine(name="bn1")(_conv(self.features, 3, self.stride, "conv1")(x)))
        y = Affine(name="bn2")(_conv(self.features, 3, 1, "conv2")(y))
        if self.stride != 1 or x.shape[-1] != self.features:
            x = Affine(name="downsample_bn")(_conv(self.features, 1, self.stride, "downsample_conv")(x))
        return nn.relu(y + x)


class FiLM(nn.Module):
    """Feature-wise linear modulation (Perez et al., 2018): x * (1 + gamma(c)) + beta(c) per channel,
    broadcast over H and W, with gamma and beta linear in the condition c and zero at initialisation, so
    that a pretrained backbone starts out computing exactly what it computed before (BridgeData V2's
    FiLM ResNets place one after every residual block, the same way)."""

    @nn.compact
    def __call__(self, x: jax.Array, condition: jax.Array) -> jax.Array:
        channels = x.shape[-1]
        zeros = nn.initializers.zeros
        gamma = nn.Dense(channels, kernel_init=zeros, bias_init=zeros, name="scale")(condition)
        beta = nn.Dense(channels, kernel_init=zeros, bias_init=zeros, name="shift")(condition)
        return x * (1.0 + gamma[:, None, None, :]) + beta[:, None, None, :]


class ResNetEncoder(nn.Module):
    """(..., H, W, 3) uint8 (or float in [0, 255]) frames -> (..., 512) features (ResNet-34 by default).

    ``condition`` (..., K), when given, modulates the output of every residual block through its own FiLM
    layer (the goal conditioning of the Bridge actor); without it the FiLM layers are skipped, so the same
    backbone also encodes the goal that conditions it."""

    stage_sizes: Sequence[int] = (3, 4, 6, 3)  # blocks per stage: ResNet-34
    widths: Sequence[int] = (64, 128, 256, 512)  # channels per stage

    @nn.compact
    def __call__(self, images: jax.Array, condition: jax.Array | None = None) -> jax.Array:
        lead = images.shape[:-3]
        x = images.reshape((-1, *images.shape[-3:])).astype(jnp.float32) / 255.0
        if condition is not None:
            condition = condition.reshape((-1, condition.shape[-1]))
        repeats = x.shape[-1] // 3  # goal-stacked frames (6 channels): each RGB triple normalised alike
        x = (x - jnp.tile(jnp.asarray(IMAGENET_MEAN), repeats)) / jnp.tile(jnp.asarray(IMAGENET_STD), repeats)
        x = nn.relu(Affine(name="bn1")(_conv(self.widths[0], 7, 2, "conv1")(x)))
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        for stage, (blocks, width) in enumerate(zip(self.stage_sizes, self.widths)):
            for i in range(blocks):
                stride = 2 if stage > 0 and i == 0 else 1
                x = BasicBlock(width, stride, name=f"layer{stage + 1}_{i}")(x)
                if condition is not None:
                    x = FiLM(name=f"film{stage + 1}_{i}")(x, condition)
        x = jnp.mean(x, axis=(1, 2))  # global average pool
        return x.reshape((*lead, x.shape[-1]))


def read_safetensors(path: str) -> dict[str, np.ndarray]:
    """A safetensors file -> {name: array}, read by the official ``safetensors`` package into NumPy
    (bfloat16 tensors come back as float32, which holds every bfloat16 exactly). The library's errors are
    re-raised as ``ValueError`` naming the file."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="np") as f:
            out = {}
            for name in f.keys():
                try:
                    array = f.get_tensor(name)
                except (AttributeError, TypeError) as exc:  # a dtype NumPy has no type for (e.g. F8_E4M3)
                    raise ValueError(f"{path}: tensor {name!r} has dtype {f.get_slice(name).get_dtype()}, which "
                                     f"NumPy cannot hold ({exc})") from None
                # bfloat16 is NumPy's through ml_dtypes, which JAX imports
                out[name] = array.astype(np.float32) if array.dtype == jnp.bfloat16 else array
            return out
    except SafetensorError as exc:
        detail = str(exc).removeprefix("Error while deserializing header: ")
        if "header too small" in detail:
            reason = "shorter than its 8-byte header length"
        elif "invalid JSON" in detail:
            reason = f"its header is not JSON, or not the JSON safetensors expects: {detail}"
        else:
            reason = detail
        raise ValueError(f"{path}: not a safetensors file, or a damaged one ({reason})") from None


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """torchvision / timm weights from ``.safetensors`` or ``.npz`` (a PyTorch ``.pth`` needs PyTorch to
    unpickle: convert it once with ``safetensors.torch.save_file(torch.load(p), out)``)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such weights file")
    if path.endswith(".safetensors"):
        return read_safetensors(path)
    if path.endswith(".npz"):
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    raise ValueError(f"{path}: expected a .safetensors or .npz file of a resnet34 state dict "
                     "(a .pth needs PyTorch to read; convert it to safetensors once)")


def convert_torchvision(state: dict[str, np.ndarray], stage_sizes: Sequence[int] = (3, 4, 6, 3),
                        source: str = "weights") -> dict:
    """A torchvision/timm ResNet state dict -> ``ResNetEncoder`` parameters (BatchNorms folded, convolution
    kernels from (out, in, h, w) to (h, w, in, out)). Names the first missing or misshapen tensor."""
    used = set()

    def take(key: str) -> np.ndarray:
        if key not in state:
            raise KeyError(f"{source}: no tensor {key!r} (expected a torchvision/timm resnet34 state dict)")
        used.add(key)
        return np.asarray(state[key], np.float32)

    def conv(prefix: str) -> dict:
        kernel = take(f"{prefix}.weight")
        if kernel.ndim != 4:
            raise ValueError(f"{source}: {prefix}.weight has shape {kernel.shape}; a convolution's is (out, in, h, w)")
        return {"kernel": jnp.asarray(kernel.transpose(2, 3, 1, 0))}

    def affine(prefix: str) -> dict:
        gamma, beta = take(f"{prefix}.weight"), take(f"{prefix}.bias")
        mean, var = take(f"{prefix}.running_mean"), take(f"{prefix}.running_var")
        scale = gamma / np.sqrt(var + BN_EPS)
        return {"scale": jnp.asarray(scale), "bias": jnp.asarray(beta - mean * scale)}

    params = {"conv1": conv("conv1"), "bn1": affine("bn1")}
    for stage, blocks in enumerate(stage_sizes):
        for i in range(blocks):
            torch_name, block = f"layer{stage + 1}.{i}", {}
            block["conv1"], block["bn1"] = conv(f"{torch_name}.conv1"), affine(f"{torch_name}.bn1")
            block["conv2"], block["bn2"] = conv(f"{torch_name}.conv2"), affine(f"{torch_name}.bn2")
            if f"{torch_name}.downsample.0.weight" in state:
                block["downsample_conv"] = conv(f"{torch_name}.downsample.0")
                block["downsample_bn"] = affine(f"{torch_name}.downsample.1")
            params[f"layer{stage + 1}_{i}"] = block
    extra = sorted(k for k in state if k not in used and not k.startswith("fc.") and not k.endswith("num_batches_tracked"))
    if extra:
        raise ValueError(f"{source}: tensors this ResNet does not have: {', '.join(extra[:5])}"
                         f"{' ...' if len(extra) > 5 else ''} (a deeper ResNet's weights?)")
    return params


def is_backbone(tree) -> bool:
    """Whether a parameter subtree is a ``ResNetEncoder``'s (its stem and first block)."""
    return isinstance(tree, dict) and {"conv1", "bn1", "layer1_0"} <= set(tree)


def load_into_backbones(params: dict, pretrained: dict) -> tuple[dict, int]:
    """(``params`` with every ResNet backbone's convolutions and affine maps replaced by ``pretrained``'s,
    FiLM layers kept; how many backbones were found). Shapes must match: a 6-channel (goal-stacked) stem
    cannot take 3-channel ImageNet weights, and says so."""
    found = 0

    def walk(tree, where):
        nonlocal found
        if is_backbone(tree):
            found += 1
            out = dict(tree)
            for name, weights in pretrained.items():
                have = jax.tree.map(np.shape, tree.get(name))
                want = jax.tree.map(np.shape, weights)
                if have != want:
                    raise ValueError(f"{where}/{name}: the backbone's parameters have shapes {have}, the weights "
                                     f"{want} (a goal-stacked 6-channel stem cannot take ImageNet's 3-channel "
                                     "weights: use goal_conditioning=film)")
                out[name] = jax.tree.map(lambda w, old: jnp.asarray(w, old.dtype), weights, tree[name])
            return out
        if isinstance(tree, dict):
            return {k: walk(v, f"{where}/{k}") for k, v in tree.items()}
        return tree

    return walk(params, ""), found


def load_pretrained(path: str | os.PathLike, module: ResNetEncoder | None = None) -> dict:
    """``module``'s parameters (ResNet-34 by default) from a torchvision/timm weights file, checked against
    the shapes the module creates."""
    module = module or ResNetEncoder()
    params = convert_torchvision(read_state_dict(path), module.stage_sizes, source=os.fspath(path))
    template = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3), jnp.uint8)))
    shapes = lambda tree: {jax.tree_util.keystr(p): tuple(x.shape) for p, x in jax.tree_util.tree_leaves_with_path(tree)}
    expected, got = shapes(template["params"]), shapes(params)
    wrong = [k for k in sorted(set(expected) | set(got)) if expected.get(k) != got.get(k)]
    if wrong:
        raise ValueError(f"{os.fspath(path)}: parameters differ from a ResNet with {tuple(module.widths)} channels at "
                         + ", ".join(f"{k} (expected {expected.get(k)}, got {got.get(k)})" for k in wrong[:3]))
    return params
