"""The bad-input catalogue (DESIGN §6): one table of broken inputs, each run through the entry point a user meets.

Every case copies a tiny VOC-layout folder (and a tiny COCO folder), breaks one thing, runs a stage
(``python -m stages.<stage> ...``, in this process through its real ``main()``: the same Hydra entry point,
``sys.exit`` status and stderr as on the command line) or the library call the stages make, and checks:
a one-line error naming the file or key, a non-zero exit, no traceback, no temporary or half-written file.

``docs/bad_inputs.md`` is generated from :data:`CASES`: ``python -m tests.test_bad_inputs`` rewrites it and
``test_the_docs_list_every_case`` fails when it is out of date.
"""

from __future__ import annotations

import importlib
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image

from tests.voc_fixture import make_tiny_voc
from wsss.config import REPO_ROOT
from wsss.errors import WsssError
from wsss.io import save_label_png

DOCS = REPO_ROOT / "docs" / "bad_inputs.md"
FIRST = "2000_000000"  # the first train image: a stage failing on it has written nothing yet


@dataclass(frozen=True)
class Case:
    """One bad input. ``probe``: a stage command (``stage args...``, ``{root}``, ``{coco}``, ``{out}``, ``{work}``
    filled in) or ``call:<name>`` (a library function of :data:`CALLS`); ``expect``: what the one error line
    says, with ``{root}``/``{coco}``/``{work}`` for the case's folders (the file or key it names)."""

    group: str
    name: str
    what: str
    mutate: Callable[[Path, Path, Path], None] | None
    probe: str
    expect: str


# ------------------------------------------------------------------ mutations (voc root, coco root, work dir)
def _rm(relative: str):
    return lambda root, coco, work: (root / relative).unlink()


def _write(relative: str, data: bytes | str):
    def mutate(root, coco, work):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    return mutate


def _truncate(relative: str):
    def mutate(root, coco, work):
        path = root / relative
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return mutate


def _mask(relative: str, array: np.ndarray | None = None, mode: str | None = None):
    def mutate(root, coco, work):
        if mode == "RGB":
            Image.new("RGB", (64, 48), (1, 2, 3)).save(root / relative)
        else:
            save_label_png(root / relative, array)
    return mutate


def _xml_edit(old: str, new: str, image_id: str = FIRST):
    def mutate(root, coco, work):
        path = root / "Annotations" / f"{image_id}.xml"
        text = path.read_text()
        assert old in text, old
        path.write_text(text.replace(old, new, 1))
    return mutate


def _box(x0: str, y0: str, x1: str, y1: str):
    """The first object's box of the first image replaced (1-based VOC coordinates)."""
    def mutate(root, coco, work):
        import re

        path = root / "Annotations" / f"{FIRST}.xml"
        text = re.sub(r"<bndbox>.*?</bndbox>", f"<bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax>"
                      f"<ymax>{y1}</ymax></bndbox>", path.read_text(), count=1)
        path.write_text(text)
    return mutate


def _coco_edit(edit: Callable[[dict], None]):
    def mutate(root, coco, work):
        path = coco / "annotations" / "instances_train.json"
        data = json.loads(path.read_text())
        edit(data)
        path.write_text(json.dumps(data))
    return mutate


def _cams(values: float):
    """A CAM folder for make_seeds (image tags): keys.json and one highres map holding ``values``."""
    def mutate(root, coco, work):
        (work / "cam" / "highres").mkdir(parents=True)
        ids = (root / "ImageSets/Segmentation/train.txt").read_text().split()
        (work / "cam" / "keys.json").write_text(json.dumps({i: [8, 12] for i in ids}))
        for image_id in ids:
            cam = np.random.default_rng(0).random((2, 48, 64)).astype(np.float32)
            if image_id == FIRST:
                cam[0, 3, 4] = values
            np.save(work / "cam" / "highres" / f"{image_id}.npy", cam)
    return mutate


def _novel_in_base_mask(root, coco, work):
    """CAMs for the seeds, and a novel class of fold 0 (3, bird) painted into the first image's mask, whose tags
    (cat, dog) name no novel class: a base image whose ground truth holds a novel class."""
    _cams(0.5)(root, coco, work)
    path = root / "SegmentationClass" / f"{FIRST}.png"
    mask = np.array(Image.open(path))
    mask[:4, :4] = 3
    save_label_png(path, mask)


def _classifier(kind: str):
    def mutate(root, coco, work):
        import torch

        from wsss.cam.classifier import CAMClassifier

        folder = work / "classifier"
        folder.mkdir()
        backbone = {"arch": "resnet10", "output_stride": 16, "width": 8}
        model = CAMClassifier("resnet10", 16, 20, width=8)
        state = model.state_dict()
        if kind == "nan":
            next(v for v in state.values() if v.is_floating_point()).view(-1)[0] = float("nan")
        payload = {"state_dict": state, "config": {"backbone": backbone}}
        if kind == "foreign":
            payload = {"weights": state}
        torch.save(payload, folder / "model.pt")
        if kind == "truncated":
            data = (folder / "model.pt").read_bytes()
            (folder / "model.pt").write_bytes(data[: len(data) // 3])
    return mutate


def _scribble(body: str):
    return _write(f"Scribbles/{FIRST}.xml", f"<annotation>{body}</annotation>")


# ------------------------------------------------------------------ library probes (kernel inputs, recipes)
def _kernel(which: str):
    import torch

    import kernels
    from kernels.random_walk import direction_offsets

    d = len(direction_offsets(5))
    if which == "rw_nan_affinity":
        affinity = torch.rand(1, d, 4, 4)
        affinity[0, 0, 1, 1] = float("nan")
        kernels.random_walk(torch.rand(1, 2, 4, 4), affinity, 5, 8.0, 4)
    elif which == "rw_inf_affinity":
        affinity = torch.rand(1, d, 4, 4)
        affinity[0, 3, 2, 2] = float("inf")
        kernels.random_walk(torch.rand(1, 2, 4, 4), affinity, 5, 8.0, 4)
    elif which == "rw_nan_values":
        values = torch.rand(1, 2, 4, 4)
        values[0, 1, 0, 0] = float("nan")
        kernels.random_walk(values, torch.rand(1, d, 4, 4), 5, 8.0, 4)
    elif which == "mst_zero_size":
        kernels.grid_mst(torch.rand(1, 3, 0, 5))
    elif which == "mst_nan_guide":
        guide = torch.rand(1, 3, 4, 4)
        guide[0, 0, 0, 0] = float("nan")
        kernels.grid_mst(guide)
    elif which == "minimax_inf_embed":
        embed = torch.rand(1, 3, 4, 4)
        embed[0, 2, 3, 3] = float("-inf")
        kernels.minimax_propagation(torch.rand(1, 2, 4, 4), kernels.grid_mst(torch.rand(1, 3, 4, 4)), embed, 0.1)
    elif which == "lp_nan_image":
        image = torch.rand(1, 3, 4, 4)
        image[0, 0, 1, 2] = float("nan")
        kernels.local_propagation(torch.rand(1, 2, 4, 4), image)
    elif which == "superpixel_1x1":
        kernels.superpixel_pool(torch.rand(1, 4, 1, 1), torch.rand(1, 9, 1, 1), 16)


def _recipe(name: str):
    from wsss.workflow.recipes import resolve_recipe

    resolve_recipe("point", name)


def _load_classifier(root, coco, work):
    from wsss.cam.inference import load_classifier

    load_classifier(work / "classifier")


def _load_superpixel_net(work: Path) -> None:
    from wsss.superpixel.model import load_superpixel_net

    load_superpixel_net(work / "superpixel")


CALLS: dict[str, Callable[[Path, Path, Path], None]] = {
    **{f"kernel:{k}": (lambda k: lambda root, coco, work: _kernel(k))(k) for k in (
        "rw_nan_affinity", "rw_inf_affinity", "rw_nan_values", "mst_zero_size", "mst_nan_guide",
        "minimax_inf_embed", "lp_nan_image", "superpixel_1x1")},
    "recipe:nope": lambda root, coco, work: _recipe("nope"),
    "recipe:psa": lambda root, coco, work: _recipe("psa"),
    "load_classifier": _load_classifier,
    "load_superpixel_net": lambda root, coco, work: _load_superpixel_net(work),
}

CHECK = "check_dataset dataset=voc dataset.root={root} splits=[train,val]"
CHECK_COCO = "check_dataset dataset=coco dataset.root={coco} dataset.train_split=train splits=[train]"
SEEDS = "make_seeds dataset=voc dataset.root={root} seeds=camfree split=train"
POINT, SCRIBBLE, BOX = (f"{SEEDS} supervision={kind}" for kind in ("point", "scribble", "box"))
P2SEG = ("train_p2seg dataset=voc dataset.root={root} labels_dir={root}/SegmentationClass model.init_from_classifier=false "
         "work_dir={work}/p2seg")
IMAGE_SEEDS = "make_seeds dataset=voc dataset.root={root} supervision=image split=train cam_dir={work}/cam"
WEAKSHOT_SEEDS = "make_seeds dataset=voc dataset.root={root} supervision=weakshot split=train cam_dir={work}/cam"
JPG, PNG, XML = (f"{{root}}/{folder}/{FIRST}.{ext}" for folder, ext in
                 (("JPEGImages", "jpg"), ("SegmentationClass", "png"), ("Annotations", "xml")))

CASES: list[Case] = [
    # ---------------------------------------------------------------- datasets
    Case("dataset", "missing-root", "dataset root that does not exist", None,
         "check_dataset dataset=voc dataset.root={root}/nowhere", "{root}/nowhere: dataset root not found"),
    Case("dataset", "missing-split", "split file missing", _rm("ImageSets/Segmentation/val.txt"), CHECK,
         "{root}/ImageSets/Segmentation/val.txt: split 'val' not found"),
    Case("dataset", "empty-split", "split file listing no ids", _write("ImageSets/Segmentation/val.txt", "\n"),
         CHECK, "{root}/ImageSets/Segmentation/val.txt: split file lists no image ids"),
    Case("dataset", "duplicate-id", "split file listing an id twice",
         _write("ImageSets/Segmentation/train.txt", f"{FIRST}\n{FIRST}\n"), CHECK,
         f"{{root}}/ImageSets/Segmentation/train.txt: line 2: duplicate id '{FIRST}'"),
    Case("dataset", "image-absent", "image listed in the split but absent", _rm(f"JPEGImages/{FIRST}.jpg"), CHECK,
         f"{JPG}: image file not found"),
    Case("dataset", "jpeg-garbage", "unreadable JPEG (not an image)", _write(f"JPEGImages/{FIRST}.jpg", b"\x00" * 64),
         CHECK, f"{JPG}: unreadable or truncated image"),
    Case("dataset", "jpeg-empty", "zero-byte JPEG", _write(f"JPEGImages/{FIRST}.jpg", b""), CHECK,
         f"{JPG}: unreadable or truncated image"),
    Case("dataset", "jpeg-truncated", "JPEG cut in half", _truncate(f"JPEGImages/{FIRST}.jpg"), CHECK,
         f"{JPG}: unreadable or truncated image"),
    Case("dataset", "mask-size", "class mask of another size than its image",
         _mask(f"SegmentationClass/{FIRST}.png", np.zeros((40, 64), np.uint8)), CHECK,
         f"{PNG}: mask size 64x40 differs from its image size 64x48 (WxH)"),
    Case("dataset", "mask-values", "class mask values outside 0-20 and 255",
         _mask(f"SegmentationClass/{FIRST}.png", np.full((48, 64), 42, np.uint8)), CHECK,
         f"{PNG}: mask values 42 outside 0..20 and 255"),
    Case("dataset", "mask-mode", "class mask in RGB instead of a palette", _mask(f"SegmentationClass/{FIRST}.png", mode="RGB"),
         CHECK, f"{PNG}: label PNG must be palette (P) or greyscale (L), got mode RGB"),
    Case("dataset", "mask-garbage", "unreadable class mask PNG", _write(f"SegmentationClass/{FIRST}.png", b"PNG?" * 8),
         CHECK, f"{PNG}: unreadable PNG"),
    Case("dataset", "object-mask-size", "object mask of another size",
         _mask(f"SegmentationObject/{FIRST}.png", np.zeros((48, 10), np.uint8)), CHECK,
         f"{{root}}/SegmentationObject/{FIRST}.png: mask size 10x48 differs from its image size 64x48 (WxH)"),
    # ---------------------------------------------------------------- annotations
    Case("annotation", "xml-malformed", "malformed VOC XML", _write(f"Annotations/{FIRST}.xml", "<annotation><size>"),
         CHECK, f"{XML}: malformed XML (line 1, column 18)"),
    Case("annotation", "xml-root", "XML whose root is not <annotation>", _write(f"Annotations/{FIRST}.xml", "<voc/>"),
         CHECK, f"{XML}: malformed XML: root element is <voc>, expected <annotation>"),
    Case("annotation", "unknown-class", "unknown class name", _xml_edit("<name>", "<name>unicorn"), CHECK,
         f"{XML}: object 1: unknown class name 'unicorn"),
    Case("annotation", "box-inverted", "inverted box (xmax < xmin)", _box("30", "5", "10", "20"), CHECK,
         f"{XML}: object 1 (cat) box (0-based) (29, 4, 9, 19) is inverted or empty"),
    Case("annotation", "box-empty-coordinate", "box coordinate not a number", _box("a", "5", "10", "20"), CHECK,
         f"{XML}: malformed XML: object 1 (cat) <xmin> is 'a', not a number"),
    Case("annotation", "box-outside", "box outside the image", _box("10", "5", "200", "20"), CHECK,
         f"{XML}: object 1 (cat) box (0-based) (9, 4, 199, 19) lies outside the 64x48 image"),
    Case("annotation", "box-supervision-outside", "box outside the image, box seeds", _box("10", "5", "200", "20"), BOX,
         f"{XML}: object 1 (cat) box (0-based) (9, 4, 199, 19) lies outside the 64x48 image"),
    Case("annotation", "xml-size", "XML <size> unlike the image", _xml_edit("<width>64</width>", "<width>65</width>"),
         CHECK, f"{XML}: <size> 65x48 differs from the image size 64x48 (WxH)"),
    Case("annotation", "point-outside", "point outside the image", _write(f"Points/{FIRST}.txt", "500 5 0 1.0\n"), POINT,
         f"{{root}}/Points/{FIRST}.txt: line 1: point (500.0, 5.0) lies outside"),
    Case("annotation", "point-malformed", "malformed point line", _write(f"Points/{FIRST}.txt", "5 5 cat\n"), POINT,
         f"{{root}}/Points/{FIRST}.txt: line 1: malformed point line '5 5 cat'"),
    Case("annotation", "point-class", "point of an unknown class index", _write(f"Points/{FIRST}.txt", "5 5 20 1.0\n"),
         POINT, "unknown class_index '20'"),
    Case("annotation", "p2seg-point-outside", "point outside the image, P2Seg training",
         _write(f"Points/{FIRST}.txt", "500 5 0 1.0\n"), P2SEG,
         f"{{root}}/Points/{FIRST}.txt: line 1: point (500.0, 5.0) lies outside"),
    Case("annotation", "p2seg-point-class", "point of an unknown class index, P2Seg training",
         _write(f"Points/{FIRST}.txt", "5 5 20 1.0\n"), P2SEG, f"{{root}}/Points/{FIRST}.txt: line 1: unknown class_index '20'"),
    Case("annotation", "point-confidence", "point confidence outside [0, 1]", _write(f"Points/{FIRST}.txt", "5 5 3 1.5\n"),
         POINT, "confidence '1.5' outside [0, 1]"),
    Case("annotation", "point-nan", "point with a NaN coordinate", _write(f"Points/{FIRST}.txt", "nan 5 3 1.0\n"), POINT,
         "fields must be finite numbers"),
    Case("annotation", "point-file-missing", "point file missing", _rm(f"Points/{FIRST}.txt"), POINT,
         f"{{root}}/Points/{FIRST}.txt: point file not found"),
    Case("annotation", "scribble-malformed", "malformed scribble XML", _write(f"Scribbles/{FIRST}.xml", "<annotation><polygon>"),
         SCRIBBLE, f"{{root}}/Scribbles/{FIRST}.xml: malformed XML (line 1"),
    Case("annotation", "scribble-no-point", "scribble polygon without points", _scribble("<polygon><tag>cat</tag></polygon>"),
         SCRIBBLE, f"{{root}}/Scribbles/{FIRST}.xml: malformed scribble XML: polygon 1 (cat) has no <point>"),
    Case("annotation", "scribble-coordinate", "scribble point with a non-numeric coordinate",
         _scribble("<polygon><tag>cat</tag><point><X>a</X><Y>1</Y></point></polygon>"), SCRIBBLE,
         f"{{root}}/Scribbles/{FIRST}.xml: malformed scribble XML: polygon 1 point 1 needs numeric <X> and <Y>"),
    Case("annotation", "scribble-missing", "scribble file missing", _rm(f"Scribbles/{FIRST}.xml"), SCRIBBLE,
         f"{{root}}/Scribbles/{FIRST}.xml: scribble file not found"),
    Case("annotation", "weakshot-novel-in-base", "weak-shot base image whose mask holds a novel class",
         _novel_in_base_mask, WEAKSHOT_SEEDS, f"{PNG}: a base image of fold 0 (its tags name no novel class) has "
         "pixels of novel class(es) bird"),
    Case("annotation", "coco-missing-image", "COCO json listing an image whose file is absent",
         lambda root, coco, work: (coco / "train" / "000001.jpg").unlink(), CHECK_COCO, "{coco}/train/000001.jpg: image file not found"),
    Case("annotation", "coco-missing-image-seeds", "COCO json listing an image whose file is absent, box seeds",
         lambda root, coco, work: (coco / "train" / "000002.jpg").unlink(),
         "make_seeds dataset=coco dataset.root={coco} dataset.train_split=train seeds=camfree split=train supervision=box",
         "{coco}/train/000002.jpg: image file not found (listed in {coco}/annotations/instances_train.json)"),
    Case("annotation", "coco-missing-json", "COCO annotation file missing",
         lambda root, coco, work: (coco / "annotations" / "instances_train.json").unlink(), CHECK_COCO,
         "{coco}/annotations/instances_train.json: annotation file for split 'train' not found"),
    Case("annotation", "coco-missing-json-seeds", "COCO annotation file missing, box seeds",
         lambda root, coco, work: (coco / "annotations" / "instances_train.json").unlink(),
         "make_seeds dataset=coco dataset.root={coco} dataset.train_split=train seeds=camfree split=train supervision=box",
         "{coco}/annotations/instances_train.json: annotation file for split 'train' not found"),
    Case("annotation", "coco-malformed", "COCO json that is not JSON", lambda root, coco, work: (
        coco / "annotations" / "instances_train.json").write_text("{\"images\": ["), CHECK_COCO,
         "{coco}/annotations/instances_train.json: malformed JSON (line 1"),
    Case("annotation", "coco-unknown-image", "COCO annotation of an unknown image_id",
         _coco_edit(lambda d: d["annotations"][0].update(image_id=99)), CHECK_COCO,
         "{coco}/annotations/instances_train.json: annotation 1: unknown image_id 99"),
    Case("annotation", "coco-bbox-outside", "COCO bbox outside its image",
         _coco_edit(lambda d: d["annotations"][0].update(bbox=[10, 10, 500, 5])), CHECK_COCO,
         "lies outside the 64x48 image"),
    Case("annotation", "coco-no-images", "COCO json without an images list", _coco_edit(lambda d: d.pop("images")),
         CHECK_COCO, "{coco}/annotations/instances_train.json: malformed COCO JSON: missing list 'images'"),
    # ---------------------------------------------------------------- configs
    Case("config", "unknown-key", "unknown config key", None, "refine_crf crf.iteratoins=5",
         "config refine_crf: Could not override 'crf.iteratoins': Key 'iteratoins' not in 'CRFConfig'"),
    Case("config", "wrong-type", "value of the wrong type", None, "make_seeds scribble.width=wide",
         "override scribble.width=wide: Value 'wide' of type 'str' could not be converted to Integer"),
    Case("config", "unknown-group-option", "unknown dataset", None, "check_dataset dataset=imagenet",
         "Could not find 'dataset/imagenet' (available: coco, folder, minicoco, minivoc, voc)"),
    Case("config", "missing-value", "mandatory value not set (dataset.root of voc)", None, "check_dataset dataset=voc",
         "config check_dataset: missing value for 'dataset.root'"),
    Case("config", "bad-choice", "value outside its choices", None, f"{BOX} box.inside=sideways",
         "box.inside: must be 'ignore' or 'background', got 'sideways'"),
    Case("config", "workers", "refine_crf workers not a positive number", None,
         "refine_crf dataset=voc dataset.root={root} split=train workers=0",
         "workers: must be a positive number of processes (1: no pool, in this process) or null"),
    Case("config", "override-grammar", "override that does not parse", None, "check_dataset seed=[1,",
         "config check_dataset: no viable alternative at input '[1,'"),
    Case("config", "weakshot-fold", "weak-shot fold outside 0-3", None, f"{WEAKSHOT_SEEDS} supervision.fold=4",
         "supervision.fold: must be a fold 0..3, got 4"),
    Case("config", "superpixel-crop", "superpixel training crop not a multiple of the cell", None,
         "train_superpixel dataset=voc dataset.root={root} train.crop=30",
         "train.crop: must be a multiple of the cell (model.cell = 16), got 30"),
    Case("config", "unknown-recipe", "unknown recipe", None, "call:recipe:nope",
         "recipe 'nope': no such recipe (conf/recipe/nope.yaml); valid for point:"),
    Case("config", "recipe-supervision", "recipe of another supervision (psa for points)", None, "call:recipe:psa",
         "does not apply to supervision 'point'"),
    # ---------------------------------------------------------------- checkpoints and model files
    Case("checkpoint", "classifier-truncated", "truncated classifier model.pt", _classifier("truncated"), "call:load_classifier",
         "{work}/classifier/model.pt: unreadable classifier file, truncated or corrupt (RuntimeError: "
         "PytorchStreamReader failed reading zip archive: failed finding central directory)"),
    Case("checkpoint", "classifier-foreign", "model.pt that is not a classifier", _classifier("foreign"), "call:load_classifier",
         "{work}/classifier/model.pt: not a classifier file (no 'config')"),
    Case("checkpoint", "classifier-nan", "classifier weights holding NaN", _classifier("nan"), "call:load_classifier",
         "{work}/classifier/model.pt: classifier weight 'trunk.stem.0.weight' holds NaN or inf"),
    Case("checkpoint", "superpixel-missing", "superpixel network model.pt missing", None, "call:load_superpixel_net",
         "{work}/superpixel/model.pt: superpixel network not found"),
    # ---------------------------------------------------------------- score maps and kernel inputs
    Case("kernel", "cam-nan", "CAM score map holding NaN", _cams(float("nan")), IMAGE_SEEDS,
         f"{{work}}/cam/highres/{FIRST}.npy: 1 non-finite values (NaN or inf) in the array"),
    Case("kernel", "cam-inf", "CAM score map holding inf", _cams(float("inf")), IMAGE_SEEDS,
         f"{{work}}/cam/highres/{FIRST}.npy: 1 non-finite values (NaN or inf) in the array"),
    Case("kernel", "rw-nan-affinity", "random walk: NaN affinity", None, "call:kernel:rw_nan_affinity",
         "random_walk: affinity must be finite and >= 0"),
    Case("kernel", "rw-inf-affinity", "random walk: inf affinity", None, "call:kernel:rw_inf_affinity",
         "random_walk: affinity must be finite and >= 0"),
    Case("kernel", "rw-nan-values", "random walk: NaN values", None, "call:kernel:rw_nan_values",
         "random_walk: values holds NaN or inf values"),
    Case("kernel", "mst-zero-size", "zero-size image (0 rows)", None, "call:kernel:mst_zero_size",
         "grid_mst: guide must have H, W >= 1, got shape (1, 3, 0, 5)"),
    Case("kernel", "mst-nan", "tree guide holding NaN", None, "call:kernel:mst_nan_guide",
         "grid_mst: guide holds NaN or inf values"),
    Case("kernel", "minimax-inf", "APro embedding holding -inf", None, "call:kernel:minimax_inf_embed",
         "minimax_propagation: embed holds NaN or inf values"),
    Case("kernel", "lp-nan", "local propagation: NaN guide image", None, "call:kernel:lp_nan_image",
         "local_propagation: image holds NaN or inf values"),
    Case("kernel", "superpixel-1x1", "1x1 image for 16-px superpixels", None, "call:kernel:superpixel_1x1",
         "superpixel_pool: image size 1x1 is not a multiple of the cell 16x16"),
]


# ------------------------------------------------------------------ fixtures
def _tiny_coco(root: Path) -> Path:
    """A COCO-layout folder: two 64x48 images, one box + polygon each, category 1 'cat'."""
    (root / "annotations").mkdir(parents=True)
    (root / "train").mkdir()
    images, annotations = [], []
    for n in (1, 2):
        pixels = np.full((48, 64, 3), 100, np.uint8)
        pixels[10:30, 10:40] = (200, 50, 50)
        Image.fromarray(pixels).save(root / "train" / f"{n:06d}.jpg", quality=95)
        images.append({"id": n, "file_name": f"{n:06d}.jpg", "width": 64, "height": 48})
        annotations.append({"id": n, "image_id": n, "category_id": 1, "iscrowd": 0, "bbox": [10, 10, 30, 20],
                            "area": 600, "segmentation": [[10, 10, 40, 10, 40, 30, 10, 30]]})
    (root / "annotations" / "instances_train.json").write_text(json.dumps(
        {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "cat"}]}))
    return root


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> tuple[Path, Path]:
    from tests.test_weak_pipeline import add_scribbles

    base = tmp_path_factory.mktemp("pristine")
    voc = make_tiny_voc(base / "VOC2012", n_train=2, n_val=1)
    add_scribbles(voc)
    return voc, _tiny_coco(base / "coco")


def _run_stage(command: str, capfd) -> tuple[int, str]:
    """``python -m stages.<stage> <args>`` in this process (real ``main()``, Hydra included): (status, stderr)."""
    stage, *args = command.split()
    module = importlib.import_module(f"stages.{stage}")
    argv = sys.argv
    sys.argv = [f"stages/{stage}.py", *args, "num_threads=1"]
    capfd.readouterr()
    try:
        module.main()
        status = 0
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
    return status, capfd.readouterr().err


def _fill(text: str, root: Path, coco: Path, work: Path) -> str:
    return text.replace("{root}", str(root)).replace("{coco}", str(coco)).replace("{work}", str(work))


@pytest.mark.parametrize("case", CASES, ids=[f"{c.group}-{c.name}" for c in CASES])
def test_bad_input(case: Case, pristine, tmp_path, capfd, kernels_built):
    root, coco, work, out = tmp_path / "VOC2012", tmp_path / "coco", tmp_path / "work", tmp_path / "out"
    shutil.copytree(pristine[0], root)
    shutil.copytree(pristine[1], coco)
    work.mkdir()
    if case.mutate is not None:
        case.mutate(root, coco, work)
    expect = _fill(case.expect, root, coco, work)
    if case.probe.startswith("call:"):
        with pytest.raises((WsssError, ValueError)) as info:
            CALLS[case.probe.removeprefix("call:")](root, coco, work)
        line = str(info.value)
        assert "\n" not in line and expect in line, line
    else:
        command = _fill(case.probe, root, coco, work) + f" out_dir={out} paths.results={tmp_path / 'results'}"
        status, err = _run_stage(command, capfd)
        assert status == 1, err
        assert "Traceback" not in err, err
        lines = [line for line in err.splitlines() if line.strip()]
        assert lines and lines[-1].startswith("error: "), err
        # the line naming the problem: the error itself, or (check_dataset: every problem, then a summary) one above
        assert any(expect in line for line in lines), f"{expect!r} not in:\n{err}"
        if out.exists():  # nothing half-written: no temporary, no finished label folder
            assert not [p for p in out.rglob("*") if ".tmp" in p.name], list(out.rglob("*"))
            assert not (out / "metrics.json").exists()
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]


def test_the_catalogue_has_thirty_distinct_cases():
    assert len({(c.group, c.name) for c in CASES}) == len(CASES) >= 30
    assert {c.group for c in CASES} == {"dataset", "annotation", "config", "checkpoint", "kernel"}


# ------------------------------------------------------------------ the docs page
def render_docs() -> str:
    titles = {"dataset": "Datasets", "annotation": "Annotations", "config": "Configuration",
              "checkpoint": "Checkpoints and model files", "kernel": "Score maps and kernel inputs"}
    lines = ["# Bad inputs and what they say", "",
             "<!-- generated from tests/test_bad_inputs.py (CASES): python -m tests.test_bad_inputs -->", "",
             "Each row is a case of `tests/test_bad_inputs.py`: the input broken, what runs (a stage command, or the",
             "library call the stages make), and the one line it ends with (`error: <line>` on stderr and exit status 1",
             "for a stage; the message of the `WsssError` or, for the compiled kernels, `ValueError` for a call).",
             "`<root>` is a VOC-layout folder, `<coco>` a COCO one, `<work>` the folder of upstream results.",
             f"{len(CASES)} cases.", ""]
    for group, title in titles.items():
        lines += [f"## {title}", "", "| input | run | message (contains) |", "|---|---|---|"]
        for case in (c for c in CASES if c.group == group):
            run = case.probe.removeprefix("call:")
            run = f"`{run}`" if case.probe.startswith("call:") else f"`python -m stages.{run}`"
            place = lambda text: text.replace("{root}", "<root>").replace("{coco}", "<coco>").replace("{work}", "<work>")
            run, message = place(run), place(case.expect)
            cell = lambda text: text.replace("|", "\\|")
            lines.append(f"| {cell(case.what)} | {cell(run)} | `{cell(message)}` |")
        lines.append("")
    return "\n".join(lines)


def test_the_docs_list_every_case():
    assert DOCS.is_file() and DOCS.read_text() == render_docs(), "docs out of date: run python -m tests.test_bad_inputs"


if __name__ == "__main__":
    DOCS.parent.mkdir(exist_ok=True)
    DOCS.write_text(render_docs())
    print(f"wrote {DOCS} ({len(CASES)} cases)")
