"""Shards of per-image stages (wsss.shards): the split into blocks, the gather against an unsharded run byte for
byte, metrics from summed confusion matrices, the merge rules and their one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from wsss.errors import WsssError
from wsss.io import load_json, save_json
from wsss.metrics import SegmentationScorer
from wsss.pipeline import LabelStageOutput
from wsss.shards import SCORES_STATE, Shard, gather_shards, merge_counts, read_manifests, split_ids

CLASSES = tuple(f"class{k}" for k in range(5))


class FakeSplit:
    """The reader surface LabelStageOutput uses: random ground truth for all images but every fourth."""

    split = "train"
    num_classes = len(CLASSES)
    class_names = CLASSES

    def __init__(self, n: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.ids = [f"img{k:03d}" for k in range(n)]
        self.gt = {i: rng.integers(0, 5, size=(7, 9)).astype(np.uint8) for i in self.ids}
        for image_id in self.ids[::3]:
            self.gt[image_id][0, :3] = 255
        self.pred = {i: np.where(rng.random((7, 9)) < 0.7, self.gt[i], rng.integers(0, 5, size=(7, 9))).astype(np.uint8)
                     for i in self.ids}
        for image_id in self.ids[1::5]:
            self.pred[image_id][2:4, 2:6] = 255  # unlabelled pixels (seeds)

    def has_class_mask(self, image_id: str) -> bool:
        return int(image_id[3:]) % 4 != 3

    def load_class_mask(self, image_id: str) -> np.ndarray:
        return self.gt[image_id]


def write_stage(out: Path, dataset, shard: Shard | None) -> None:
    """A stage like make_cam / propagate: labels at the top and in labels/, a keys.json, a shared file, counts."""
    view = shard.restrict(dataset) if shard is not None else dataset
    if shard is not None and shard.sharded:
        shard.write_manifest(out, view.ids)
    top = LabelStageOutput(out, view, {"stage": "fake"}, shard=shard)
    sub = LabelStageOutput(out / "labels", view, {"stage": "fake.labels"}, shard=shard)
    keys = {}
    for image_id in view.ids:
        top.add(image_id, dataset.pred[image_id])
        sub.add(image_id, np.where(dataset.pred[image_id] == 255, 0, dataset.pred[image_id]))
        (out / "scores").mkdir(exist_ok=True)
        np.save(out / "scores" / f"{image_id}.npy", dataset.gt[image_id].astype(np.float16))
        keys[image_id] = [int(v) for v in np.unique(dataset.gt[image_id]) if v not in (0, 255)]
    save_json(out / "keys.json", keys)
    save_json(out / "split.json", {"all": split_ids(view)})  # computed on the whole split: the same in every shard
    save_json(out / "grabcut.json", {"boxes": len(view.ids), "errors": [f"{i}: e" for i in view.ids if int(i[3:]) % 5 == 0]})
    sub.finish()
    top.finish({"counted": {"images": len(view.ids)}})


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and ".hydra" not in p.parts}


# ---------------------------------------------------------------------------------------------- the split
@pytest.mark.parametrize("n", [0, 1, 5, 17, 100])
@pytest.mark.parametrize("count", [1, 2, 3, 4, 16])
def test_blocks_partition_the_split_in_order(n, count):
    ids = [f"id{k}" for k in range(n)]
    blocks = [Shard(index, count).select(ids) for index in range(count)]
    assert [i for block in blocks for i in block] == ids
    sizes = [len(block) for block in blocks]
    assert max(sizes) - min(sizes) <= 1
    assert blocks == [Shard(index, count).select(list(ids)) for index in range(count)]  # a function of ids and count


def test_bad_shard_settings_name_the_key():
    with pytest.raises(WsssError, match=r"^shard.index: must be in 0\.\.3 \(shard.count=4\), got 4$"):
        Shard(4, 4)
    with pytest.raises(WsssError, match=r"^shard.count: must be at least 1, got 0$"):
        Shard(0, 0)


def test_restrict_keeps_the_whole_split_for_split_wide_work():
    dataset = FakeSplit(10)
    view = Shard(1, 3).restrict(dataset)
    assert view.ids == dataset.ids[3:6] and split_ids(view) == dataset.ids and len(dataset.ids) == 10
    assert Shard().restrict(dataset) is dataset and split_ids(dataset) == dataset.ids


# ---------------------------------------------------------------------------------------------- merging
def test_merge_counts_adds_numbers_concatenates_lists_and_keeps_equal_strings():
    merged = merge_counts([{"boxes": 3, "fallbacks": {"thin": 1}, "errors": ["a"], "name": "x"},
                           {"boxes": 4, "fallbacks": {"thin": 2, "low": 1}, "errors": [], "name": "x"}], "r")
    assert merged == {"boxes": 7, "fallbacks": {"thin": 3, "low": 1}, "errors": ["a"], "name": "x"}
    with pytest.raises(WsssError, match=r"^r\.name: shards disagree \('x' vs 'y'\)$"):
        merge_counts([{"name": "x"}, {"name": "y"}], "r")


def test_summed_scorer_states_give_the_whole_splits_record():
    dataset = FakeSplit(23, seed=3)
    whole = SegmentationScorer(len(CLASSES), CLASSES)
    parts = [SegmentationScorer(len(CLASSES), CLASSES) for _ in range(4)]
    for k, image_id in enumerate(dataset.ids):
        whole.add(dataset.pred[image_id], dataset.gt[image_id])
        parts[k % 4].add(dataset.pred[image_id], dataset.gt[image_id])  # any partition, not only blocks
    merged = SegmentationScorer.from_state(SegmentationScorer.merge_states([p.state() for p in parts]), CLASSES)
    assert json.dumps(merged.record({"p": 1})) == json.dumps(whole.record({"p": 1}))
    mean_of_parts = np.mean([p.record({})["miou"] for p in parts])
    assert abs(mean_of_parts - whole.record({})["miou"]) > 1e-6  # what an average of shard mIoUs would get wrong


# ---------------------------------------------------------------------------------------------- the gather
@pytest.mark.parametrize("count", [2, 3, 7])
def test_gather_writes_the_unsharded_folder_byte_for_byte(tmp_path, count):
    dataset = FakeSplit(20)
    write_stage(tmp_path / "whole", dataset, None)
    shard_dirs = [tmp_path / "shards" / str(k) for k in range(count)]
    for k, folder in enumerate(shard_dirs):
        write_stage(folder, dataset, Shard(k, count))
        assert (folder / SCORES_STATE).is_file() and (folder / "labels" / SCORES_STATE).is_file()
    done = gather_shards(shard_dirs, tmp_path / "gathered")
    assert done["images"] == 20 and done["linked"] == 20 * 3
    whole, gathered = files_of(tmp_path / "whole"), files_of(tmp_path / "gathered")
    assert sorted(whole) == sorted(gathered)
    for name in whole:
        assert whole[name] == gathered[name], name
    metrics = load_json(tmp_path / "gathered" / "metrics.json")
    assert metrics["n_images"] == 15 and metrics["counted"] == {"images": 20}
    assert list(load_json(tmp_path / "gathered" / "keys.json")) == dataset.ids
    assert load_json(tmp_path / "gathered" / "grabcut.json")["boxes"] == 20


def test_gather_keeps_each_shards_config(tmp_path):
    dataset = FakeSplit(6)
    shard_dirs = [tmp_path / str(k) for k in range(2)]
    for k, folder in enumerate(shard_dirs):
        write_stage(folder, dataset, Shard(k, 2))
        (folder / ".hydra").mkdir()
        (folder / ".hydra" / "config.yaml").write_text(f"shard:\n  index: {k}\n")
    gather_shards(shard_dirs, tmp_path / "out")
    assert (tmp_path / "out" / ".hydra" / "shards" / "1" / "config.yaml").read_text() == "shard:\n  index: 1\n"


def test_gather_errors_are_one_line_naming_the_file(tmp_path):
    dataset = FakeSplit(8)
    shard_dirs = [tmp_path / str(k) for k in range(2)]
    for k, folder in enumerate(shard_dirs):
        write_stage(folder, dataset, Shard(k, 2))
    # a file that is neither an image's nor merged, different in two shards
    save_json(shard_dirs[1] / "split.json", {"all": ["other"]})
    with pytest.raises(WsssError, match=rf"^{shard_dirs[1]}/split.json: differs from {shard_dirs[0]}/split.json"):
        gather_shards(shard_dirs, tmp_path / "out1")
    save_json(shard_dirs[1] / "split.json", load_json(shard_dirs[0] / "split.json"))
    # the manifests: a missing shard, a shard of another count, an image in two shards
    with pytest.raises(WsssError, match=r"shard.json: shard manifest not found \(run the shard job first\)$"):
        gather_shards([shard_dirs[0], tmp_path / "missing"], tmp_path / "out2")
    Shard(0, 3).write_manifest(shard_dirs[0], dataset.ids[:4])
    with pytest.raises(WsssError, match=r"0/shard.json: shard 0 of 3, expected shard 0 of 2$"):
        read_manifests(shard_dirs)
    Shard(0, 2).write_manifest(shard_dirs[0], dataset.ids[:5])
    with pytest.raises(WsssError, match=r"1/shard.json: image 'img004' is also in .*0/shard.json$"):
        read_manifests(shard_dirs)


def test_a_shard_with_no_image_is_gathered(tmp_path):
    dataset = FakeSplit(2)
    shard_dirs = [tmp_path / str(k) for k in range(3)]
    for k, folder in enumerate(shard_dirs):
        folder.mkdir()
        write_stage(folder, dataset, Shard(k, 3))
    write_stage(tmp_path / "whole", dataset, None)
    gather_shards(shard_dirs, tmp_path / "out")
    assert files_of(tmp_path / "out") == files_of(tmp_path / "whole")


# ---------------------------------------------------------------------------------------------- instances
class FakeInstances:
    """The reader surface of InstanceScorer / CocoBuilder: VOC classes, random ground-truth instances."""

    split = "train"
    object_folder = "SegmentationObject"

    def __init__(self, n: int) -> None:
        from wsss.data.classes import VOC_CLASSES

        self.class_names = VOC_CLASSES
        rng = np.random.default_rng(5)
        self.ids = [f"2008_{k:06d}" for k in range(n)]
        self.gt = {}
        for image_id in self.ids:
            masks = np.zeros((int(rng.integers(1, 4)), 12, 10), bool)
            for mask in masks:
                y, x = rng.integers(0, 6, size=2)
                mask[y:y + 6, x:x + 5] = True
            self.gt[image_id] = (masks, rng.integers(1, 21, size=len(masks)))

    def has_object_mask(self, image_id: str) -> bool:
        return True

    def instances(self, image_id: str):
        return self.gt[image_id]

    def image_path(self, image_id: str) -> Path:
        return Path(f"{image_id}.jpg")


def predicted(dataset: FakeInstances, image_id: str):
    from wsss.instances.instance_set import InstanceSet

    masks, labels = dataset.gt[image_id]
    shifted = np.roll(masks, int(image_id[-1]) % 3, axis=2)
    scores = np.linspace(0.9, 0.3, len(labels)).astype(np.float32)
    return InstanceSet(np.concatenate([shifted, np.zeros((1, 12, 10), bool)]), np.append(labels, 7), np.append(scores, .1))


def test_instance_scores_and_coco_jsons_of_shards_equal_one_scorers():
    from wsss.instances.coco import CocoBuilder, merge_coco
    from wsss.instances.scoring import InstanceScorer

    dataset = FakeInstances(9)

    def score(ids):
        scorer, builder = InstanceScorer(dataset, {"stage": "t"}), CocoBuilder(dataset, description="d")
        for image_id in ids:
            instances = predicted(dataset, image_id)
            builder.add_instances(builder.add_image(image_id, 12, 10), instances)
            scorer.add(image_id, instances)
        return scorer, builder.to_dict()

    whole, whole_json = score(dataset.ids)
    parts = [score(Shard(k, 3).select(dataset.ids)) for k in range(3)]
    states = [json.loads(json.dumps(scorer.state())) for scorer, _ in parts]  # through json, as the files go
    merged = InstanceScorer.from_state(InstanceScorer.merge_states(states))
    assert json.dumps(merged.record()) == json.dumps(whole.record())
    assert json.dumps(merged.ground_truth()) == json.dumps(whole.ground_truth())
    assert json.dumps(merge_coco([data for _, data in parts])) == json.dumps(whole_json)
    assert whole.record()["ap50"] not in (0.0, 100.0)  # a score that shifted masks and an empty one move
    with pytest.raises(WsssError, match="image id 2008000000 in two COCO jsons"):
        merge_coco([whole_json, whole_json], "x")
