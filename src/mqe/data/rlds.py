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
``value=1`` (packed or not). ``google-crc32c`` computes the CRCs (every one is checked) and protobuf
decodes and encodes the Example (its classes built here at run time from a descriptor: no TensorFlow,
no generated code; docs/third-party-libraries.md has the measurements behind both choices). The reader
maps three of an episode's step features to the NumPy episode format: an image (``images``, uint8), the
action (``actions``) and, optionally, a state vector (``proprio``). BridgeData V2's names are the
defaults: ``observation/image_0``, ``action``, ``observation/state``.

The writer makes the same layout (a Bridge-like schema, PNG frames by default), readable by TFDS itself
(``tfds.builder_from_directory``). ``tests/fixtures/make_rlds_fixture.py`` builds a fixture with TFDS, so
that the reader is tested on bytes TensorFlow wrote.
"""

from __future__ import annotations

import functools
import io
import json
import os
import struct
from typing import Iterator, Sequence

import google_crc32c
import numpy as np

from mqe.data.dataset import DatasetError
from mqe.io import atomic_write_text, atomic_writer

DEFAULT_IMAGE = "observation/image_0"
DEFAULT_ACTION = "action"
DEFAULT_PROPRIO = "observation/state"
_CLASS = "tensorflow_datasets.core.features."


# --- CRC-32C and TFRecord framing ---------------------------------------------------------------------

def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``, by ``google-crc32c`` (its C extension; the package falls back to
    pure Python, with a warning, where the extension does not load)."""
    return google_crc32c.value(data)


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

@functools.cache
def _example():
    """The ``tf.train.Example`` message class, built by protobuf at run time from a descriptor written out
    below (tensorflow/core/example/{example,feature}.proto: the messages an Example needs), in a pool of
    its own, so that it never meets TensorFlow's classes of the same names. No generated file, no protoc."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    field = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="mqe/tf_example.proto", package="tensorflow", syntax="proto3")

    def message(name, fields, parent=None):
        out = (parent.nested_type if parent is not None else file.message_type).add(name=name)
        for number, (field_name, kind, label, type_name) in enumerate(fields, 1):
            entry = out.field.add(name=field_name, json_name=field_name, number=number, type=kind, label=label)
            if type_name:
                entry.type_name = type_name
        return out

    repeated, optional = field.LABEL_REPEATED, field.LABEL_OPTIONAL
    message("BytesList", [("value", field.TYPE_BYTES, repeated, None)])
    message("FloatList", [("value", field.TYPE_FLOAT, repeated, None)]).field[0].options.packed = True
    message("Int64List", [("value", field.TYPE_INT64, repeated, None)]).field[0].options.packed = True
    feature = message("Feature", [("bytes_list", field.TYPE_MESSAGE, optional, ".tensorflow.BytesList"),
                                  ("float_list", field.TYPE_MESSAGE, optional, ".tensorflow.FloatList"),
                                  ("int64_list", field.TYPE_MESSAGE, optional, ".tensorflow.Int64List")])
    feature.oneof_decl.add(name="kind")
    for entry in feature.field:
        entry.oneof_index = 0
    features = message("Features", [("feature", field.TYPE_MESSAGE, repeated, ".tensorflow.Features.FeatureEntry")])
    message("FeatureEntry", [("key", field.TYPE_STRING, optional, None),
                             ("value", field.TYPE_MESSAGE, optional, ".tensorflow.Feature")],
            parent=features).options.map_entry = True  # map<string, Feature> feature = 1
    message("Example", [("features", field.TYPE_MESSAGE, optional, ".tensorflow.Features")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClassesForFiles([file.name], pool)["tensorflow.Example"]


def parse_example(record: bytes) -> dict[str, tuple[str, object]]:
    """A serialized ``tf.train.Example`` -> {key: ("bytes", [bytes...]) | ("float", float32 array) |
    ("int64", int64 array)}, decoded by protobuf (repeated scalars packed or not, as protobuf requires).
    Bytes that do not decode raise ``ValueError``."""
    from google.protobuf.message import DecodeError

    try:
        example = _example().FromString(record)
    except DecodeError as exc:
        raise ValueError(f"protobuf: {exc}; a field runs past the end of its message, or the bytes are not "
                         "protobuf") from None
    out = {}
    for key, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        if kind == "bytes_list":
            out[key] = "bytes", list(feature.bytes_list.value)
        elif kind == "float_list":
            out[key] = "float", np.array(feature.float_list.value, np.float32)
        elif kind == "int64_list":
            out[key] = "int64", np.array(feature.int64_list.value, np.int64)
        else:
            out[key] = "bytes", []  # an empty Feature
    return out


def serialize_example(features: dict[str, tuple[str, object]]) -> bytes:
    """The inverse of ``parse_example``, by protobuf (packed lists, keys in sorted order: the bytes do not
    depend on the dict's order)."""
    example = _example()()
    entries = example.features.feature
    for key in sorted(features):
        kind, values = features[key]
        if kind == "bytes":
            values = [bytes(v) for v in values]
        elif kind == "float":
            values = np.asarray(values, np.float32).ravel().tolist()
        elif kind == "int64":
            values = np.asarray(values, np.int64).ravel().tolist()
        else:
            raise ValueError(f"unknown feature kind {kind!r}")
        target = getattr(entries[key], f"{kind}_list")
        target.SetInParent()  # an empty list keeps its kind
        target.value.extend(values)
    return example.SerializeToString(deterministic=True)


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
