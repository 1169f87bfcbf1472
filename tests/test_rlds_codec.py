"""The TFRecord / tf.train.Example codec of ``mqe.data.rlds`` (google-crc32c and protobuf underneath),
checked against the CRC-32C check values, against the bytes the hand-written codec it replaced wrote, and
against an independent decoder written here from the wire format (it shares no code with protobuf)."""

import os
import pathlib

import numpy as np
import pytest

from mqe.data.rlds import (crc32c, frame_record, masked_crc, parse_example, read_records, serialize_example,
                           shard_files, write_rlds)

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "rlds" / "tiny_robot" / "1.0.0"


def _crc32c_bitwise(data: bytes) -> int:
    """CRC-32C one bit at a time (reflected polynomial 0x82F63B78): slow and plainly right."""
    c = 0xFFFFFFFF
    for byte in data:
        c ^= byte
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 & -(c & 1))
    return c ^ 0xFFFFFFFF


def test_crc32c_gives_the_published_check_values():
    assert crc32c(b"123456789") == 0xE3069283  # the CRC catalogue's check value for CRC-32C
    assert crc32c(b"") == 0
    # RFC 3720 (iSCSI), appendix B.4: 32 bytes of zeros, of ones, ascending and descending.
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E
    assert crc32c(bytes(range(31, -1, -1))) == 0x113FDB5C
    rng = np.random.default_rng(0)
    for size in (1, 7, 8, 63, 64, 65, 1000):
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        assert crc32c(data) == _crc32c_bitwise(data), size
    assert masked_crc(b"") == 0xA282EAD8


def test_the_codec_writes_the_bytes_the_hand_written_codec_wrote():
    """Literals written by mqe's own framing and Example encoder before they moved onto google-crc32c and
    protobuf (commit 9433eb7): a file written now is the file written then."""
    assert frame_record(b"abc").hex() == "0300000000000000b099490e6162636e57f121"
    assert frame_record(b"").hex() == "000000000000000029039807d8ea82a2"
    features = {"steps/observation/image_0": ("bytes", [b"\x89PNG", b""]),
                "steps/action": ("float", np.array([1.5, -2.0, 0.25], np.float32)),
                "steps/is_last": ("int64", np.array([0, 1])), "episode_metadata/episode_id": ("int64", np.array([-3]))}
    assert serialize_example(features).hex() == (
        "0a93010a2d0a1b657069736f64655f6d657461646174612f657069736f64655f6964120e1a0c0a0afdffffffffffffffff010a"
        "200a0c73746570732f616374696f6e1210120e0a0c0000c03f000000c00000803e0a170a0d73746570732f69735f6c61737412"
        "061a040a0200010a270a1973746570732f6f62736572766174696f6e2f696d6167655f30120a0a080a0489504e470a00")
    # Empty lists keep their kind through a round trip.
    empty = parse_example(serialize_example({"f": ("float", []), "i": ("int64", []), "b": ("bytes", [])}))
    assert {k: (kind, len(v)) for k, (kind, v) in empty.items()} == {"f": ("float", 0), "i": ("int64", 0),
                                                                   "b": ("bytes", 0)}
    with pytest.raises(ValueError, match="unknown feature kind 'text'"):
        serialize_example({"t": ("text", ["x"])})


# --- an independent decoder of the wire format ---------------------------------------------------------

def _varint(data, i):
    value = shift = 0
    while True:
        value |= (data[i] & 0x7F) << shift
        shift += 7
        i += 1
        if data[i - 1] < 0x80:
            return value, i


def _fields(data):
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        wire = key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            size, i = _varint(data, i)
            value, i = data[i:i + size], i + size
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise AssertionError(f"wire type {wire} in a tf.train.Example")
        yield key >> 3, wire, value


def _reference_parse(record):
    out = {}
    for _, _, features in _fields(record):  # Example.features = 1
        for _, _, entry in _fields(features):  # Features.feature = 1, map entries
            parts = dict((n, v) for n, _, v in _fields(entry))
            key, feature = parts[1].decode(), parts.get(2, b"")
            out[key] = "bytes", []
            for kind, _, body in _fields(feature):
                values = [(wire, v) for n, wire, v in _fields(body) if n == 1]
                if kind == 1:
                    out[key] = "bytes", [bytes(v) for _, v in values]
                elif kind == 2:
                    out[key] = "float", np.frombuffer(b"".join(v for _, v in values), "<f4")
                else:
                    ints = []
                    for wire, v in values:
                        if wire == 0:
                            ints.append(v)
                        else:
                            j = 0
                            while j < len(v):
                                x, j = _varint(v, j)
                                ints.append(x)
                    out[key] = "int64", np.array([x - (1 << 64) if x >= 1 << 63 else x for x in ints], np.int64)
    return out


def _assert_same(ours, reference):
    assert sorted(ours) == sorted(reference)
    for key, (kind, values) in reference.items():
        assert ours[key][0] == kind, key
        if kind == "bytes":
            assert ours[key][1] == values, key
        else:
            assert ours[key][1].dtype == values.dtype and np.array_equal(ours[key][1], values), key


def test_records_read_identically_by_protobuf_and_by_an_independent_decoder(tmp_path):
    """The records TensorFlow wrote (the fixture) and the records our writer wrote decode to the same
    features through parse_example (protobuf) and through the decoder above; a record TensorFlow wrote,
    decoded and encoded again, decodes the same."""
    tensorflow_records = list(read_records(str(FIXTURE / "tiny_robot-train.tfrecord-00000-of-00001")))
    rng = np.random.default_rng(3)
    episodes = [{"images": rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8),
                 "actions": rng.standard_normal((n, 7)).astype(np.float32),
                 "proprio": rng.standard_normal((n, 7)).astype(np.float32)} for n in (2, 5, 3)]
    folder = write_rlds(episodes, str(tmp_path), image_format="jpeg", episodes_per_shard=2)
    ours = [r for file, _ in shard_files(folder, "train") for r in read_records(file)]
    assert len(tensorflow_records) == 3 and len(ours) == 3 and os.path.isdir(folder)
    for record in tensorflow_records + ours:
        parsed = parse_example(record)
        _assert_same(parsed, _reference_parse(record))
        _assert_same(parse_example(serialize_example(parsed)), parsed)
    for record, episode in zip(ours, episodes):
        parsed = parse_example(record)
        assert np.array_equal(parsed["steps/action"][1], episode["actions"].ravel())
        assert np.array_equal(parsed["steps/observation/state"][1], episode["proprio"].ravel())
        assert len(parsed["steps/observation/image_0"][1]) == len(episode["images"])
