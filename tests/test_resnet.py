"""ResNet-34 with ImageNet weights from a user's file, checked against an independent implementation.

The reference below is plain NumPy written from torchvision's definition of resnet34 (NCHW weights
used as stored, BatchNorm in inference mode with its running statistics, not folded): it shares no code
with ``mqe.encoders.resnet``. The weights file is written and read by the official ``safetensors`` package
(a core dependency: ``mqe.encoders.resnet.read_safetensors`` reads through it into NumPy).
"""

import numpy as np
import pytest

import jax
import jax.numpy as jnp
import safetensors.numpy as safetensors_numpy

from mqe.encoders.resnet import ResNetEncoder, load_pretrained, read_safetensors

STAGES, WIDTHS = (3, 4, 6, 3), (64, 128, 256, 512)


def torchvision_resnet34_state(seed=0, stages=STAGES, widths=WIDTHS):
    """Random weights in torchvision's layout and names (fc included, as a real file has it); other
    ``stages`` and ``widths`` give a smaller ResNet of the same layout."""
    rng = np.random.default_rng(seed)
    state = {}

    def conv(name, out, inp, k):
        state[f"{name}.weight"] = (rng.normal(size=(out, inp, k, k)) * np.sqrt(2.0 / (inp * k * k))).astype(np.float32)

    def bn(name, c):
        state[f"{name}.weight"] = rng.uniform(0.5, 1.5, c).astype(np.float32)
        state[f"{name}.bias"] = rng.normal(scale=0.1, size=c).astype(np.float32)
        state[f"{name}.running_mean"] = rng.normal(scale=0.1, size=c).astype(np.float32)
        state[f"{name}.running_var"] = rng.uniform(0.5, 2.0, c).astype(np.float32)
        state[f"{name}.num_batches_tracked"] = np.array(1000, np.int64)

    conv("conv1", widths[0], 3, 7)
    bn("bn1", widths[0])
    inp = widths[0]
    for s, (blocks, width) in enumerate(zip(stages, widths)):
        for i in range(blocks):
            name = f"layer{s + 1}.{i}"
            conv(f"{name}.conv1", width, inp, 3)
            bn(f"{name}.bn1", width)
            conv(f"{name}.conv2", width, width, 3)
            bn(f"{name}.bn2", width)
            if i == 0 and (s > 0 or inp != width):
                conv(f"{name}.downsample.0", width, inp, 1)
                bn(f"{name}.downsample.1", width)
            inp = width
    state["fc.weight"] = rng.normal(size=(1000, widths[-1])).astype(np.float32)
    state["fc.bias"] = np.zeros(1000, np.float32)
    return state


# ---- the independent reference (NumPy, NCHW, float64) ----
def _conv(x, w, stride, pad):
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out_c, _, kh, kw = w.shape
    ho, wo = (x.shape[2] - kh) // stride + 1, (x.shape[3] - kw) // stride + 1
    out = np.zeros((x.shape[0], out_c, ho, wo))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride]  # (N, C, ho, wo)
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    return out


def _bn(x, state, name):
    g, b = state[f"{name}.weight"], state[f"{name}.bias"]
    m, v = state[f"{name}.running_mean"], state[f"{name}.running_var"]
    shape = (1, -1, 1, 1)
    return (x - m.reshape(shape)) / np.sqrt(v.reshape(shape) + 1e-5) * g.reshape(shape) + b.reshape(shape)


def _maxpool(x):
    x = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    ho, wo = (x.shape[2] - 3) // 2 + 1, (x.shape[3] - 3) // 2 + 1
    return np.max([x[:, :, i:i + 2 * ho:2, j:j + 2 * wo:2] for i in range(3) for j in range(3)], axis=0)


def reference_features(state, frames_uint8):
    x = frames_uint8.astype(np.float64).transpose(0, 3, 1, 2) / 255.0
    x = (x - np.array([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)) / np.array([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)
    x = np.maximum(_bn(_conv(x, state["conv1.weight"], 2, 3), state, "bn1"), 0)
    x = _maxpool(x)
    for s, blocks in enumerate(STAGES):
        for i in range(blocks):
            name, stride = f"layer{s + 1}.{i}", (2 if s > 0 and i == 0 else 1)
            y = np.maximum(_bn(_conv(x, state[f"{name}.conv1.weight"], stride, 1), state, f"{name}.bn1"), 0)
            y = _bn(_conv(y, state[f"{name}.conv2.weight"], 1, 1), state, f"{name}.bn2")
            if f"{name}.downsample.0.weight" in state:
                x = _bn(_conv(x, state[f"{name}.downsample.0.weight"], stride, 0), state, f"{name}.downsample.1")
            x = np.maximum(x + y, 0)
    return x.mean(axis=(2, 3))


def test_pretrained_weights_give_the_reference_features(tmp_path):
    state = torchvision_resnet34_state()
    path = str(tmp_path / "resnet34.safetensors")
    safetensors_numpy.save_file(state, path)
    read = read_safetensors(path)
    assert sorted(read) == sorted(state) and all(np.array_equal(read[k], state[k]) for k in state)

    params = load_pretrained(path)
    frames = np.random.default_rng(1).integers(0, 256, (2, 40, 48, 3), dtype=np.uint8)  # odd sizes: padding
    ours = np.asarray(jax.jit(lambda p, x: ResNetEncoder().apply({"params": p}, x))(params, frames))
    expected = reference_features(state, frames)
    assert ours.shape == (2, 512)
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    assert np.abs(expected).max() > 0.1  # not a degenerate (all-zero) comparison
    # Leading axes are kept: (2, 1, H, W, 3) -> (2, 1, 512).
    stacked = np.asarray(ResNetEncoder().apply({"params": params}, frames[:, None]))
    np.testing.assert_allclose(stacked[:, 0], ours, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_a_wrong_weights_file_is_named(tmp_path):
    state = torchvision_resnet34_state()
    del state["layer3.2.bn1.running_var"]
    path = str(tmp_path / "broken.npz")
    np.savez(path, **state)
    with pytest.raises(KeyError, match=r"broken.npz: no tensor 'layer3.2.bn1.running_var'"):
        load_pretrained(path)
    deeper = torchvision_resnet34_state()
    deeper["layer3.6.conv1.weight"] = deeper["layer3.5.conv1.weight"]
    np.savez(path, **deeper)
    with pytest.raises(ValueError, match="tensors this ResNet does not have: layer3.6.conv1.weight"):
        load_pretrained(path)
    (tmp_path / "w.pth").write_bytes(b"\x80\x02")
    with pytest.raises(ValueError, match=r"w.pth: expected a .safetensors or .npz file"):
        load_pretrained(str(tmp_path / "w.pth"))
    (tmp_path / "bad.safetensors").write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00nope!")
    with pytest.raises(ValueError, match="its header is not JSON"):
        load_pretrained(str(tmp_path / "bad.safetensors"))


def test_bfloat16_weights_are_read_as_float32_and_damaged_files_are_named(tmp_path):
    values = np.array([1.5, -2.0, 3.25, 2.0 ** -20], np.float32)  # each exactly a bfloat16
    path = str(tmp_path / "half.safetensors")
    safetensors_numpy.save_file({"w": values.astype(jnp.bfloat16), "n": np.arange(3, dtype=np.int64)}, path)
    read = read_safetensors(path)
    assert read["w"].dtype == np.float32 and read["w"].tolist() == values.tolist()
    assert read["n"].dtype == np.int64 and read["n"].tolist() == [0, 1, 2]
    # A file cut inside its tensors' bytes, and one shorter than the 8-byte header length: both named.
    data = (tmp_path / "half.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[:-4])
    with pytest.raises(ValueError, match=r"cut.safetensors: not a safetensors file, or a damaged one"):
        load_pretrained(str(tmp_path / "cut.safetensors"))
    (tmp_path / "tiny.safetensors").write_bytes(b"\x05\x00")
    with pytest.raises(ValueError, match=r"tiny.safetensors: .*shorter than its 8-byte header length"):
        load_pretrained(str(tmp_path / "tiny.safetensors"))
