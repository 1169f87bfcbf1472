"""RLDS episodes read without TensorFlow: on a fixture TensorFlow Datasets wrote itself
(tests/fixtures/rlds/make_rlds_fixture.py), against the NumPy episode format, and through our writer."""

import importlib.util
import json
import os
import shutil

import jax
import numpy as np
import pytest

from mqe.cli import main
from mqe.config import make_config
from mqe.data.dataset import DatasetError
from mqe.data.rlds import (frame_record, masked_crc, parse_example, read_records, read_rlds, rlds_features,
                           serialize_example, shard_files, write_rlds)
from mqe.data.robot import ActionNormalization, episodes_to_dataset, read_episodes, write_numpy_episodes
from mqe.sampling import DeviceData

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixtures", "rlds", "tiny_robot")
_spec = importlib.util.spec_from_file_location("make_rlds_fixture", os.path.join(HERE, "fixtures", "rlds",
                                                                                  "make_rlds_fixture.py"))
make_rlds_fixture = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_rlds_fixture)


def _fixture_order() -> list[int]:
    """TFDS shuffles episodes by key hash when it writes: the episode ids in file order."""
    return [int(parse_example(record)["episode_metadata/episode_id"][1][0])
            for file, _ in shard_files(FIXTURE, "train") for record in read_records(file)]


def test_the_reader_gives_back_exactly_what_tensorflow_datasets_wrote():
    source = make_rlds_fixture.fixture_episodes()
    order = _fixture_order()
    assert sorted(order) == [0, 1, 2]
    episodes = read_rlds(FIXTURE)  # BridgeData V2's names: observation/image_0, action, observation/state
    for e, episode in zip(order, episodes):
        np.testing.assert_array_equal(episode["images"], source[e]["image_0"])  # PNG: lossless
        np.testing.assert_array_equal(episode["actions"], source[e]["action"])
        np.testing.assert_array_equal(episode["proprio"], source[e]["state"])
        assert episode["images"].dtype == np.uint8 and episode["actions"].dtype == np.float32
    # The JPEG camera decodes to within JPEG's loss (PIL here, TensorFlow's decoder may differ by a level or two).
    wrist = read_rlds(FIXTURE, image="observation/image_1", proprio=None)
    for e, episode in zip(order, wrist):
        assert "proprio" not in episode
        assert np.abs(episode["images"].astype(int) - source[e]["image_1"].astype(int)).max() <= 3
    kinds = rlds_features(FIXTURE)
    assert kinds["steps/observation/image_1"][3] == "jpeg" and kinds["steps/is_last"][1] == "bool"


def test_the_same_episodes_from_rlds_and_from_numpy_give_identical_batches(tmp_path):
    source = make_rlds_fixture.fixture_episodes()
    from_rlds = read_episodes(FIXTURE)
    numpy_folder = tmp_path / "numpy"
    write_numpy_episodes([{"images": source[e]["image_0"], "actions": source[e]["action"],
                           "proprio": source[e]["state"]} for e in _fixture_order()], str(numpy_folder))
    from_numpy = read_episodes(str(numpy_folder))
    (a, norm_a), (b, norm_b) = episodes_to_dataset(from_rlds), episodes_to_dataset(from_numpy)
    assert norm_a == norm_b
    for key in ("observations", "actions", "terminals"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    sampler = make_config("mqe", None, ["encoder=impala_debug", "batch_size=8"]).agent.sampler()
    batch_a = sampler.sample(jax.random.PRNGKey(3), DeviceData.from_dataset(a))
    batch_b = sampler.sample(jax.random.PRNGKey(3), DeviceData.from_dataset(b))
    assert set(batch_a) == set(batch_b) and batch_a["observations"].dtype == np.uint8
    for key in batch_a:
        np.testing.assert_array_equal(np.asarray(batch_a[key]), np.asarray(batch_b[key]), err_msg=key)


def test_our_writer_round_trips_through_our_reader(tmp_path):
    source = make_rlds_fixture.fixture_episodes()
    episodes = [{"images": e["image_0"], "actions": e["action"], "proprio": e["state"]} for e in source]
    folder = write_rlds(episodes, str(tmp_path), episodes_per_shard=2)
    assert sorted(os.listdir(folder)) == ["dataset_info.json", "features.json", "mqe_robot-train.tfrecord-00000-of-00002",
                                          "mqe_robot-train.tfrecord-00001-of-00002"]
    for where in ("mqe_robot", ""):  # the name folder (its one version) and the data directory (its one dataset)
        for got, want in zip(read_rlds(str(tmp_path / where)), episodes, strict=True):
            for key in want:
                np.testing.assert_array_equal(got[key], want[key])
    shutil.copytree(tmp_path / "mqe_robot", tmp_path / "other_robot")
    with pytest.raises(DatasetError, match=r"several TFDS datasets or versions \(mqe_robot/1.0.0, other_robot/1.0.0\)"):
        read_rlds(str(tmp_path))
    # RLDS step flags: the last step ends the episode, with its reward.
    record = next(read_records(shard_files(folder, "train")[0][0]))
    example = parse_example(record)
    assert example["steps/is_last"][1].tolist() == [0, 0, 0, 1] and example["steps/reward"][1].tolist() == [0, 0, 0, 1]


def test_the_example_codec_accepts_unpacked_lists_and_negative_ints(tmp_path):
    features = {"a": ("int64", np.array([-3, 0, 2 ** 40])), "b": ("float", np.array([1.5, -2.0], np.float32)),
                "c": ("bytes", [b"x", b""])}
    parsed = parse_example(serialize_example(features))
    assert parsed["a"][1].tolist() == [-3, 0, 2 ** 40] and parsed["b"][1].tolist() == [1.5, -2.0]
    assert parsed["c"] == ("bytes", [b"x", b""])
    # An unpacked int64 list (field 1, varint per value), as proto2 writers emit it: key "k", values 1, 2.
    unpacked = bytes([0x0A, 0x0D, 0x0A, 0x0B, 0x0A, 0x01, 0x6B, 0x12, 0x06, 0x1A, 0x04, 0x08, 0x01, 0x08, 0x02])
    assert parse_example(unpacked)["k"][1].tolist() == [1, 2]
    # TFRecord's masked CRC of b"" and of "123456789" (CRC-32C check value 0xE3069283).
    assert masked_crc(b"") == 0xA282EAD8
    c = 0xE3069283
    assert masked_crc(b"123456789") == (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF
    (tmp_path / "two.tfrecord").write_bytes(frame_record(b"abc") + frame_record(b""))
    assert list(read_records(str(tmp_path / "two.tfrecord"))) == [b"abc", b""]


def _copy_fixture(tmp_path):
    target = tmp_path / "tiny_robot"
    shutil.copytree(FIXTURE, target)
    return target / "1.0.0"


def test_malformed_rlds_is_named(tmp_path):
    folder = _copy_fixture(tmp_path)
    shard = folder / "tiny_robot-train.tfrecord-00000-of-00001"
    with pytest.raises(DatasetError, match="no step feature 'observation/wrist' for the image; its step features are"):
        read_rlds(str(folder), image="observation/wrist")
    with pytest.raises(DatasetError, match="step feature 'action' \\(the image\\) is a tensor, expected a image"):
        read_rlds(str(folder), image="action")
    with pytest.raises(DatasetError, match="no split 'val' \\(it has train\\)"):
        read_rlds(str(folder), "val")
    data = bytearray(shard.read_bytes())
    data[200] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="tiny_robot-train.tfrecord-00000-of-00001: record 0's data fails its CRC"):
        read_rlds(str(folder))
    shard.write_bytes(bytes(data[:100]))
    with pytest.raises(DatasetError, match="record 0 is cut short"):
        read_rlds(str(folder))
    info = json.loads((folder / "dataset_info.json").read_text())
    info["splits"][0]["shardLengths"] = ["3", "1"]
    (folder / "dataset_info.json").write_text(json.dumps(info))
    with pytest.raises(DatasetError, match="tiny_robot-train.tfrecord-00000-of-00002: missing \\(dataset_info.json lists it\\)"):
        read_rlds(str(folder))
    (folder / "features.json").unlink()
    with pytest.raises(DatasetError, match="features.json: missing"):
        read_rlds(str(folder))
    with pytest.raises(DatasetError, match="not a prepared TFDS/RLDS dataset"):
        read_rlds(str(tmp_path / "nothing"))


def test_mqe_train_on_an_rlds_folder(tmp_path, capsys):
    source = make_rlds_fixture.fixture_episodes()
    episodes = [{"images": e["image_0"], "actions": e["action"], "proprio": e["state"]} for e in source] * 4
    write_rlds(episodes, str(tmp_path / "data"))
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(tmp_path / "data" / "mqe_robot"), "--agent", "gcbc", "--preset", "none",
                 "--run-dir", str(run), "--steps", "2", "--no-progress", "--set", "batch_size=4",
                 "--set", "encoder=impala_debug", "--set", "actor_hidden_dims=16,16",
                 "--set", "train.updates_per_call=2"]) == 0
    assert "60 rows, 12 trajectories, obs (16, 16, 3)" in capsys.readouterr().out
    assert ActionNormalization.load(str(run)) == ActionNormalization.fit(
        np.concatenate([e["actions"] for e in episodes]))
    assert main(["train", "--dataset", str(tmp_path / "data" / "mqe_robot"), "--image-key", "observation/wrist",
                 "--run-dir", str(tmp_path / "r2")]) == 2
    assert "no step feature 'observation/wrist'" in capsys.readouterr().err
    write_numpy_episodes(episodes[:2], str(tmp_path / "numpy"))
    assert main(["train", "--dataset", str(tmp_path / "numpy"), "--image-key", "x", "--run-dir", str(tmp_path / "r3")]) == 2
    assert "--image-key name RLDS features; this folder is not an RLDS/TFDS dataset" in capsys.readouterr().err


def test_non_finite_values_and_one_step_episodes_are_refused(tmp_path):
    """A NaN action would make a normalisation bound NaN, and every action the server sends NaN."""
    source = make_rlds_fixture.fixture_episodes()
    episodes = [{"images": e["image_0"], "actions": e["action"].copy(), "proprio": e["state"]} for e in source]
    episodes[1]["actions"][2, 0] = np.nan
    write_rlds(episodes, str(tmp_path / "nan"))
    with pytest.raises(DatasetError, match="'action' holds NaN or infinity \\(first at step 2\\)"):
        read_episodes(str(tmp_path / "nan" / "mqe_robot"))
    short = [{k: v[:1] for k, v in episodes[0].items()}]
    write_rlds(short, str(tmp_path / "short"))
    with pytest.raises(DatasetError, match="1 step\\(s\\); an episode needs at least 2"):
        read_episodes(str(tmp_path / "short" / "mqe_robot"))
    with pytest.raises(ValueError, match="the actions hold NaN or infinity"):
        ActionNormalization.fit(episodes[1]["actions"])
    with pytest.raises(ValueError, match="low and high must be finite"):
        ActionNormalization.from_dict({"kind": "q01-q99", "low": [0.0, float("nan")], "high": [1.0, 1.0]})


def test_a_protobuf_field_that_runs_past_its_message_is_named(tmp_path):
    folder = _copy_fixture(tmp_path)
    shard = folder / "tiny_robot-train.tfrecord-00000-of-00001"
    records = list(read_records(str(shard)))
    cut = records[0][:-7]  # the last field's length now points past the end of the message
    shard.write_bytes(frame_record(cut) + b"".join(frame_record(r) for r in records[1:]))
    with pytest.raises(DatasetError, match="runs past the end"):
        read_rlds(str(folder))


def test_the_writer_refuses_episodes_that_one_features_file_cannot_describe(tmp_path):
    source = make_rlds_fixture.fixture_episodes()
    episodes = [{"images": e["image_0"], "actions": e["action"]} for e in source]
    episodes[2] = {"images": episodes[2]["images"][:, :8], "actions": episodes[2]["actions"]}
    with pytest.raises(ValueError, match="episode 2 has frames \\(8, 16, 3\\)"):
        write_rlds(episodes, str(tmp_path / "data"))
    assert not (tmp_path / "data").exists()  # nothing written
