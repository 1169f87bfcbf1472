"""RLDS episodes (the TFDS layout BridgeData V2 and Open X-Embodiment ship in), read and written without
TensorFlow, into and out of the NumPy episode format of ``mqe.data.robot``.

A prepared TFDS dataset is a folder ``<data_dir>/<name>/<version>/`` holding

    dataset_info.json   splits, each with its shard lengths (episodes per shard)
    features.json       the feature tree: ``steps`` (a sequence of per-step features) and metadata
    <name>-<split>.tfrecord-00000-of-000NN   one file per shard

Each TFRecord record is one episode, a serialized ``tf.train.Example`` whose keys are the feature tree's
paths joined by ``/``; a per-step leaf holds the values of all T steps concatenated (images: one encoded
PNG or JPEG per step). TFRecord framing, per record:

    uint64 length | uint32 masked_crc(length) | data | uint32 masked_crc(data)
    masked_crc(x) = ((c >> 15) | (c << 17)) + 0xa282ead8 (mod 2^32), c = CRC-32C(x)

and an Example is the protobuf ``Example{features=1: Features{feature=1: map<string, Feature>}}`` with
``Feature`` one of ``bytes_list=1``, ``float_list=2`` (float32) or ``int64_list=3``, each a repeated
``value=1`` (packed or not). The reader here decodes exactly that, checks every CRC, and maps three of an
episode's step features to the NumPy episode format: an image (``images``, uint8), the action
(``actions``) and, optionally, a state vector (``proprio``). BridgeData V2's names are the defaults:
``observation/image_0``, ``action``, ``observation/state``.

The writer makes the same layout (a Bridge-like schema, PNG frames by default), readable by TFDS itself
(``tfds.builder_from_directory``). ``tests/fixtures/make_rlds_fixture.py`` builds a fixture with TFDS, so
that the reader is tested on bytes TensorFlow wrote.
"""

from __future__ import annotations

import io
import json
import os
import struct
from typing import Iterator, Sequence

import numpy as np

from mqe.data.dataset import DatasetError
from mqe.io import atomic_write_text, atomic_writer

DEFAULT_IMAGE = "observation/image_0"
DEFAULT_ACTION = "action"
DEFAULT_PROPRIO = "observation/state"
_CLASS = "tensorflow_datasets.core.features."


# --- CRC-32C and TFRecord framing ---------------------------------------------------------------------

def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        c = byte
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc_table()


def _crc32c_python(data: bytes) -> int:
    c, table = 0xFFFFFFFF, _TABLE
    for byte in data:
        c = table[(c ^ byte) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


try:  # a C implementation when one is installed (google-crc32c); the pure one is ~100 ns a byte
    import google_crc32c as _fast

    def crc32c(data: bytes) -> int:
        """CRC-32C (Castagnoli) of ``data``."""
        return _fast.value(bytes(data))
except ImportError:
    crc32c = _crc32c_python


def masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC: rotate CRC-32C right by 15 bits and add 0xa282ead8 (mod 2^32)."""
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_records(path: str) -> Iterator[bytes]:
    """The records of one TFRecord file, every length and data CRC checked."""
    with open(path, "rb") as f:
        data = f.read()
    offset, index = 0, 0
    while offset < len(data):
        if offset + 12 > len(data):
            raise DatasetError(f"{path}: record {index} is cut short (its 12-byte header ends past the file)")
        header = data[offset:offset + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[offset + 8:offset + 12])
        if masked_crc(header) != length_crc:
            raise DatasetError(f"{path}: record {index}'s length fails its CRC (not a TFRecord file, or corrupt)")
        start, end = offset + 12, offset + 12 + length
        if end + 4 > len(data):
            raise DatasetError(f"{path}: record {index} is cut short ({length} bytes announced)")
        record = data[start:end]
        if masked_crc(record) != struct.unpack("<I", data[end:end + 4])[0]:
            raise DatasetError(f"{path}: record {index}'s data fails its CRC (corrupt)")
        yield record
        offset, index = end + 4, index + 1


def frame_record(record: bytes) -> bytes:
    header = struct.pack("<Q", len(record))
    return header + struct.pack("<I", masked_crc(header)) + record + struct.pack("<I", masked_crc(record))


# --- the Example protobuf -------------------------------------------------------------------------------

def _varint(data: bytes, offset: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if offset >= len(data):
            raise ValueError("varint runs past the end")
        byte = data[offset]
        value |= (byte & 0x7F) << shift
        offset += 1
        if not byte & 0x80:
            return value, offset
        shift += 7
        if shift >= 70:  # ten bytes hold any 64-bit value
            raise ValueError("varint longer than 10 bytes")


def _fields(data: bytes) -> Iterator[tuple[int, int, object]]:
    """(field number, wire type, value) of a protobuf message: ints for varints, bytes for delimited."""
    offset = 0
    while offset < len(data):
        key, offset = _varint(data, offset)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, offset = _varint(data, offset)
            yield field, wire, value
            continue
        if wire == 2:
            length, offset = _varint(data, offset)
        elif wire in (1, 5):
            length = 8 if wire == 1 else 4
        else:
            raise ValueError(f"wire type {wire} is not used by tf.train.Example")
        if offset + length > len(data):
            raise ValueError(f"field {field} runs past the end of its message")
        yield field, wire, data[offset:offset + length]
        offset += length


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _packed_varints(blob: bytes) -> list[int]:
    out, offset = [], 0
    while offset < len(blob):
        value, offset = _varint(blob, offset)
        out.append(_signed(value))
    return out


def parse_example(record: bytes) -> dict[str, tuple[str, object]]:
    """A serialized ``tf.train.Example`` -> {key: ("bytes", [bytes...]) | ("float", float32 array) |
    ("int64", int64 array)}; repeated scalars are accepted packed and unpacked, as protobuf requires."""
    out = {}
    for field, _, features in _fields(record):
        if field != 1:
            continue
        for entry_field, _, entry in _fields(features):
            if entry_field != 1:
                continue
            key, feature = "", b""
            for f, _, v in _fields(entry):
                if f == 1:
                    key = bytes(v).decode("utf-8")
                elif f == 2:
                    feature = v
            out[key] = _parse_feature(feature)
    return out


def _parse_feature(feature: bytes) -> tuple[str, object]:
    for kind, _, body in _fields(feature):
        if kind == 1:
            return "bytes", [bytes(v) for f, _, v in _fields(body) if f == 1]
        if kind == 2:
            parts = []
            for f, wire, v in _fields(body):
                if f == 1:
                    if wire not in (2, 5):
                        raise ValueError(f"a float_list value has wire type {wire}, expected 2 or 5")
                    parts.append(np.frombuffer(v, "<f4"))
            return "float", np.concatenate(parts) if parts else np.zeros(0, np.float32)
        if kind == 3:
            values = []
            for f, wire, v in _fields(body):
                if f == 1:
                    values.extend(_packed_varints(v) if wire == 2 else [_signed(v)])
            return "int64", np.asarray(values, np.int64)
    return "bytes", []  # an empty Feature


def _encode_varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _delimited(field: int, payload: bytes) -> bytes:
    return _encode_varint(field << 3 | 2) + _encode_varint(len(payload)) + payload


def serialize_example(features: dict[str, tuple[str, object]]) -> bytes:
    """The inverse of ``parse_example`` (packed lists, keys in sorted order)."""
    entries = []
    for key in sorted(features):
        kind, values = features[key]
        if kind == "bytes":
            body = _delimited(1, b"".join(_delimited(1, bytes(v)) for v in values))
        elif kind == "float":
            body = _delimited(2, _delimited(1, np.asarray(values, "<f4").tobytes()))
        elif kind == "int64":
            body = _delimited(3, _delimited(1, b"".join(_encode_varint(int(v)) for v in np.asarray(values).ravel())))
        else:
            raise ValueError(f"unknown feature kind {kind!r}")
        entries.append(_delimited(1, _delimited(1, key.encode("utf-8")) + _delimited(2, body)))
    return _delimited(1, b"".join(entries))


# --- the TFDS folder ------------------------------------------------------------------------------------

def _leaves(feature: dict, prefix: str, out: dict) -> None:
    """features.json's tree -> {path: (kind, dtype, shape)}; per-step leaves are under ``steps/``."""
    if "featuresDict" in feature:
        for name, child in feature["featuresDict"].get("features", {}).items():
            _leaves(child, f"{prefix}{name}/", out)
    elif "sequence" in feature:
        _leaves(feature["sequence"]["feature"], prefix, out)
    elif "image" in feature:
        spec = feature["image"]
        out[prefix[:-1]] = ("image", spec.get("dtype", "uint8"), tuple(int(d) for d in spec["shape"]["dimensions"]),
                            spec.get("encodingFormat", "png"))
    elif "tensor" in feature:
        spec = feature["tensor"]
        if spec.get("encoding", "none") != "none":
            raise DatasetError(f"feature {prefix[:-1]!r} is stored with encoding {spec['encoding']!r}; only plain "
                               "tensors ('none', as BridgeData V2 and Open X-Embodiment use) are read")
        out[prefix[:-1]] = ("tensor", spec["dtype"], tuple(int(d) for d in spec.get("shape", {}).get("dimensions", [])),
                            None)
    elif "text" in feature:
        out[prefix[:-1]] = ("text", "string", (), None)


def _version_folder(path: str) -> str:
    """The folder holding dataset_info.json: ``path`` itself, its one version subfolder (``<name>/``), or
    the one ``<name>/<version>/`` of a TFDS data directory holding a single dataset."""
    if os.path.isfile(os.path.join(path, "dataset_info.json")):
        return path
    if os.path.isdir(path):
        subfolders = lambda d: sorted(e for e in os.listdir(d) if os.path.isdir(os.path.join(d, e)))
        has_info = lambda d: os.path.isfile(os.path.join(path, d, "dataset_info.json"))
        inner = [d for d in subfolders(path) if has_info(d)]
        if not inner:  # a data directory: <name>/<version>/dataset_info.json
            inner = [os.path.join(n, v) for n in subfolders(path) for v in subfolders(os.path.join(path, n))
                     if has_info(os.path.join(n, v))]
        if len(inner) == 1:
            return os.path.join(path, inner[0])
        if len(inner) > 1:
            raise DatasetError(f"{path}: holds several TFDS datasets or versions ({', '.join(inner)}); name one")
    raise DatasetError(f"{path}: not a prepared TFDS/RLDS dataset (no dataset_info.json)")


def is_rlds_folder(path: str) -> bool:
    try:
        _version_folder(path)
        return True
    except DatasetError:
        return False


def _load_json(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise DatasetError(f"{path}: missing (a prepared TFDS dataset has dataset_info.json and features.json)") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from None


def rlds_features(path: str) -> dict[str, tuple]:
    """{feature path: (kind, dtype, shape, image encoding)} of the dataset at ``path``."""
    folder = _version_folder(path)
    leaves: dict = {}
    _leaves(_load_json(os.path.join(folder, "features.json")), "", leaves)
    return leaves


def shard_files(path: str, split: str) -> list[tuple[str, int]]:
    """(file, episodes) of every shard of ``split``, in shard order."""
    folder = _version_folder(path)
    info = _load_json(os.path.join(folder, "dataset_info.json"))
    splits = {s.get("name"): s for s in info.get("splits", [])}
    if split not in splits:
        raise DatasetError(f"{folder}: no split {split!r} (it has {', '.join(sorted(map(str, splits))) or 'none'})")
    lengths = [int(n) for n in splits[split].get("shardLengths", [])]
    template = splits[split].get("filepathTemplate", "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}")
    files = []
    for i, n in enumerate(lengths):
        name = (template.replace("{DATASET}", info["name"]).replace("{SPLIT}", split)
                .replace("{FILEFORMAT}", info.get("fileFormat", "tfrecord"))
                .replace("{SHARD_X_OF_Y}", f"{i:05d}-of-{len(lengths):05d}"))
        files.append((os.path.join(folder, name), n))
    return files


def _decode_image(blob: bytes, where: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(blob)) as image:
            return np.asarray(image.convert("RGB"), np.uint8)
    except Exception as exc:  # PIL raises several kinds for bad bytes
        raise DatasetError(f"{where}: an image that does not decode ({type(exc).__name__}: {exc})") from None


def read_rlds(path: str, split: str = "train", *, image: str = DEFAULT_IMAGE, action: str = DEFAULT_ACTION,
              proprio: str | None = DEFAULT_PROPRIO) -> list[dict[str, np.ndarray]]:
    """Every episode of ``split`` as NumPy-format episodes {images (T, H, W, 3) uint8, actions (T, A)
    float32[, proprio (T, P) float32]}, in shard and record order. ``image``, ``action`` and ``proprio``
    name step features (without the ``steps/`` prefix); ``proprio=None``, or a dataset without that
    feature when it is the default, reads no proprioception."""
    leaves = rlds_features(path)
    steps = {k[len("steps/"):]: v for k, v in leaves.items() if k.startswith("steps/")}

    def need(name: str, kind: str, flag: str) -> tuple:
        if name not in steps:
            raise DatasetError(f"{path}: no step feature {name!r} for {flag}; its step features are "
                               + ", ".join(sorted(steps)))
        if steps[name][0] != kind:
            raise DatasetError(f"{path}: step feature {name!r} ({flag}) is a {steps[name][0]}, expected a {kind}")
        return steps[name]

    image_spec = need(image, "image", "the image")
    action_spec = need(action, "tensor", "the action")
    if proprio is not None and proprio not in steps and proprio == DEFAULT_PROPRIO:
        proprio = None
    proprio_spec = need(proprio, "tensor", "the proprioception") if proprio is not None else None
    if image_spec[1] != "uint8" or len(image_spec[2]) != 3 or image_spec[2][-1] != 3:
        raise DatasetError(f"{path}: image {image!r} is {image_spec[1]} {image_spec[2]}; expected uint8 (H, W, 3)")
    episodes = []
    for file, expected in shard_files(path, split):
        if not os.path.exists(file):
            raise DatasetError(f"{file}: missing (dataset_info.json lists it)")
        count = 0
        for index, record in enumerate(read_records(file)):
            where = f"{file} episode {index}"
            try:
                example = parse_example(record)
            except ValueError as exc:
                raise DatasetError(f"{where}: not a tf.train.Example ({exc})") from None
            episodes.append(_episode(example, where, image, image_spec, action, action_spec, proprio, proprio_spec))
            count += 1
        if count != expected:
            raise DatasetError(f"{file}: {count} episodes, dataset_info.json says {expected}")
    if not episodes:
        raise DatasetError(f"{path}: split {split!r} holds no episodes")
    return episodes


def _episode(example, where, image, image_spec, action, action_spec, proprio, proprio_spec) -> dict[str, np.ndarray]:
    def get(name, kind):
        key = "steps/" + name
        if key not in example:
            raise DatasetError(f"{where}: no {key!r} in the record")
        found, values = example[key]
        if found != kind:
            raise DatasetError(f"{where}: {key!r} holds {found} values, expected {kind}")
        return values

    blobs = get(image, "bytes")
    frames = np.stack([_decode_image(b, f"{where} step {t} {image!r}") for t, b in enumerate(blobs)]) if blobs else None
    if frames is None or frames.shape[1:] != image_spec[2]:
        raise DatasetError(f"{where}: {image!r} frames are {None if frames is None else frames.shape[1:]}, "
                           f"features.json says {image_spec[2]}")
    steps = len(frames)
    if steps < 2:
        raise DatasetError(f"{where}: {steps} step(s); an episode needs at least 2 (a transition)")
    episode = {"images": frames, "actions": _tensor(get(action, "float"), steps, action_spec, where, action)}
    if proprio is not None:
        episode["proprio"] = _tensor(get(proprio, "float"), steps, proprio_spec, where, proprio)
    return episode


def _tensor(values: np.ndarray, steps: int, spec: tuple, where: str, name: str) -> np.ndarray:
    shape = spec[2]
    size = int(np.prod(shape)) if shape else 1
    if len(values) != steps * size:
        raise DatasetError(f"{where}: {name!r} holds {len(values)} values for {steps} steps of shape {shape}")
    values = np.asarray(values, np.float32).reshape(steps, size)
    if not np.isfinite(values).all():
        step = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
        raise DatasetError(f"{where}: {name!r} holds NaN or infinity (first at step {step})")
    return values


def _feature(kind: str, **spec) -> dict:
    if kind == "image":
        return {"pythonClassName": _CLASS + "image_feature.Image",
                "image": {"shape": {"dimensions": [str(d) for d in spec["shape"]]}, "dtype": "uint8",
                          "encodingFormat": spec["encoding"]}}
    if kind == "text":
        return {"pythonClassName": _CLASS + "text_feature.Text", "text": {}}
    scalar = not spec["shape"]
    return {"pythonClassName": _CLASS + ("scalar.Scalar" if scalar else "tensor_feature.Tensor"),
            "tensor": {"shape": {"dimensions": [str(d) for d in spec["shape"]]} if not scalar else {},
                       "dtype": spec["dtype"], "encoding": "none"}}


def _dict(features: dict) -> dict:
    return {"pythonClassName": _CLASS + "features_dict.FeaturesDict", "featuresDict": {"features": features}}


def write_rlds(episodes: Sequence[dict[str, np.ndarray]], path: str, *, name: str = "mqe_robot",
               version: str = "1.0.0", split: str = "train", image_format: str = "png",
               episodes_per_shard: int = 100) -> str:
    """NumPy-format episodes -> a prepared TFDS dataset in ``path/name/version/`` with BridgeData V2's
    step names (``observation/image_0``, ``observation/state`` when the episodes have proprio,
    ``action``, reward 1 on the last step, discount 1, is_first / is_last / is_terminal, an empty
    language instruction; metadata episode_id and file_path). Shards are written atomically and
    dataset_info.json last, so an interrupted write leaves no dataset that looks complete. Returns the
    version folder."""
    from PIL import Image

    if image_format not in ("png", "jpeg"):
        raise ValueError(f"image_format must be png (lossless) or jpeg, got {image_format!r}")
    if not episodes:
        raise ValueError("write_rlds: no episodes")
    first = episodes[0]
    frame_shape, action_dim = first["images"].shape[1:], first["actions"].shape[1]
    for i, ep in enumerate(episodes):  # one features.json describes them all: check before writing anything
        if (ep["images"].shape[1:] != frame_shape or ep["actions"].shape[1:] != (action_dim,)
                or ("proprio" in ep) != ("proprio" in first)
                or ("proprio" in ep and ep["proprio"].shape[1:] != first["proprio"].shape[1:])):
            raise ValueError(f"write_rlds: episode {i} has frames {ep['images'].shape[1:]}, actions "
                             f"{ep['actions'].shape[1:]}{', proprio' if 'proprio' in ep else ''}; episode 0 has "
                             f"frames {frame_shape}, actions ({action_dim},){', proprio' if 'proprio' in first else ''}")
    folder = os.path.join(path, name, version)
    os.makedirs(folder, exist_ok=True)
    info = os.path.join(folder, "dataset_info.json")
    if os.path.exists(info):  # rewriting: until the new one is written, the folder must not look complete
        os.remove(info)
    step_features = {
        "observation": _dict({"image_0": _feature("image", shape=frame_shape, encoding=image_format),
                              **({"state": _feature("tensor", shape=(first["proprio"].shape[1],), dtype="float32")}
                                 if "proprio" in first else {})}),
        "action": _feature("tensor", shape=(action_dim,), dtype="float32"),
        "discount": _feature("tensor", shape=(), dtype="float32"),
        "reward": _feature("tensor", shape=(), dtype="float32"),
        "is_first": _feature("tensor", shape=(), dtype="bool"),
        "is_last": _feature("tensor", shape=(), dtype="bool"),
        "is_terminal": _feature("tensor", shape=(), dtype="bool"),
        "language_instruction": _feature("text"),
    }
    features = _dict({
        "steps": {"pythonClassName": _CLASS + "dataset_feature.Dataset",
                  "sequence": {"feature": _dict(step_features), "length": "-1"}},
        "episode_metadata": _dict({"episode_id": _feature("tensor", shape=(), dtype="int32"),
                                   "file_path": _feature("text")}),
    })
    atomic_write_text(os.path.join(folder, "features.json"), json.dumps(features, indent=2))
    shards = [episodes[i:i + episodes_per_shard] for i in range(0, len(episodes), episodes_per_shard)]
    template = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"
    total_bytes = 0
    for s, shard in enumerate(shards):
        file = os.path.join(folder, f"{name}-{split}.tfrecord-{s:05d}-of-{len(shards):05d}")
        with atomic_writer(file) as f:
            for j, ep in enumerate(shard):
                index = s * episodes_per_shard + j
                steps = len(ep["images"])
                last = np.arange(steps) == steps - 1
                blobs = []
                for frame in ep["images"]:
                    buffer = io.BytesIO()
                    Image.fromarray(np.asarray(frame, np.uint8)).save(buffer, format=image_format.upper())
                    blobs.append(buffer.getvalue())
                example = {
                    "steps/observation/image_0": ("bytes", blobs),
                    "steps/action": ("float", np.asarray(ep["actions"], np.float32).ravel()),
                    "steps/discount": ("float", np.ones(steps, np.float32)),
                    "steps/reward": ("float", last.astype(np.float32)),
                    "steps/is_first": ("int64", (np.arange(steps) == 0).astype(np.int64)),
                    "steps/is_last": ("int64", last.astype(np.int64)),
                    "steps/is_terminal": ("int64", last.astype(np.int64)),
                    "steps/language_instruction": ("bytes", [b""] * steps),
                    "episode_metadata/episode_id": ("int64", np.array([index])),
                    "episode_metadata/file_path": ("bytes", [f"episode_{index:06d}".encode()]),
                }
                if "proprio" in ep:
                    example["steps/observation/state"] = ("float", np.asarray(ep["proprio"], np.float32).ravel())
                record = serialize_example(example)
                total_bytes += len(record)
                f.write(frame_record(record))
    info = {"name": name, "version": version, "fileFormat": "tfrecord", "moduleName": "mqe.data.rlds",
            "description": "Robot episodes written by mqe (mqe.data.rlds.write_rlds).",
            "splits": [{"name": split, "filepathTemplate": template, "numBytes": str(total_bytes),
                        "shardLengths": [str(len(s)) for s in shards]}]}
    atomic_write_text(os.path.join(folder, "dataset_info.json"), json.dumps(info, indent=2))
    return folder
