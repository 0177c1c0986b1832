"""Fuzzing the readers of user files: VOC XML, point files, scribble XML, COCO json, label PNGs.

A seeded loop mutates a valid file (truncation, byte flips, special bytes, deleted or repeated spans) and
reads it the way the stages do. Every mutated input must read cleanly or raise :class:`WsssError` with a
one-line message naming the file; any other exception fails the test with the seed that reproduces it.
"""

from __future__ import annotations

import json
import random
import re
import struct
import time
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from wsss.data.annotations import read_points, read_scribbles
from wsss.data.coco import COCODataset
from wsss.data.voc import parse_voc_xml
from wsss.errors import WsssError
from wsss.io import load_label_png, save_label_png

#: mutated inputs per reader (5 readers: 2,500 in all)
PER_READER = 500
SPECIAL = [b"<", b">", b"/", b'"', b"{", b"}", b"[", b"]", b",", b":", b"-", b"e", b"9", b"nan", b"inf", b"\x00",
           b"\xff", b"&", b"&amp;", b"\n", b" ", b"1e999", b"-1"]

VOC_XML = (
    "<annotation><filename>a.jpg</filename><size><width>64</width><height>48</height><depth>3</depth></size>"
    "<object><name>cat</name><difficult>0</difficult><bndbox><xmin>5</xmin><ymin>6</ymin><xmax>30</xmax>"
    "<ymax>40</ymax></bndbox><part><name>head</name><bndbox><xmin>6</xmin><ymin>7</ymin><xmax>9</xmax>"
    "<ymax>9</ymax></bndbox></part></object><object><name>dog</name><truncated>1</truncated><bndbox><xmin>33</xmin>"
    "<ymin>2</ymin><xmax>60</xmax><ymax>47</ymax></bndbox></object></annotation>"
).encode()
POINTS = b"10 12 7 1.000\n40 30 11 0.5\n3 3 -1 1\n\n63 47 0 0.25\n"
SCRIBBLES = (
    "<annotation><size><width>64</width><height>48</height></size><polygon><tag>cat</tag><point><X>3</X><Y>4</Y>"
    "</point><point><X>20</X><Y>22</Y></point></polygon><polygon><tag>background</tag><point><X>60</X><Y>1</Y>"
    "</point></polygon></annotation>"
).encode()
COCO = json.dumps({
    "images": [{"id": 1, "file_name": "000001.jpg", "width": 64, "height": 48},
               {"id": 2, "file_name": "000002.jpg", "width": 64, "height": 48}],
    "categories": [{"id": 1, "name": "cat"}, {"id": 3, "name": "dog"}],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [10, 10, 30, 20], "area": 600,
         "segmentation": [[10, 10, 40, 10, 40, 30, 10, 30]]},
        {"id": 2, "image_id": 2, "category_id": 3, "iscrowd": 1, "bbox": [0, 0, 4, 2], "area": 8,
         "segmentation": {"counts": [0, 2, 46, 2, 46, 2, 46, 2, 2926], "size": [48, 64]}},
        {"id": 3, "image_id": 1, "category_id": 3, "iscrowd": 1, "bbox": [3, 5, 27, 15], "area": 405,
         "segmentation": {"counts": "e4?Q1000000000000000000000000000000000000000000000000000kb1", "size": [48, 64]}},
    ],
}).encode()


NUMBER = re.compile(rb"-?\d+(?:\.\d+)?")
TOKENS = [b"-1", b"0", b"-0", b"1e9", b"nan", b"inf", b"-inf", b"99999999999999999999", b"3.5", b"", b"x", b"64",
          b"48", b"1e-9"]
JSON_VALUES = [None, "", "x", -1, 0, 1e9, 3.5, float("nan"), [], {}, [1], {"a": 1}, True, "1", [[1, 2]], 2**70]


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to three random edits of ``data`` (mostly one)."""
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        kind = rng.choice((0, 1, 1, 2, 2, 3, 4))
        position = rng.randrange(len(out) + 1) if out else 0
        if kind == 0:  # truncation
            del out[position:]
        elif kind == 1 and out:  # byte flips
            for _ in range(rng.randint(1, 8)):
                index = rng.randrange(len(out))
                out[index] ^= 1 << rng.randrange(8)
        elif kind == 2:  # a special token inserted or written over
            token = rng.choice(SPECIAL)
            if rng.random() < 0.5:
                out[position:position] = token
            else:
                out[position:position + len(token)] = token
        elif kind == 3:  # a span deleted
            del out[position:position + rng.randint(1, 16)]
        else:  # a span repeated
            out[position:position] = out[position:position + rng.randint(1, 24)]
        if not out and rng.random() < 0.5:
            break
    return bytes(out)


def mutate_numbers(data: bytes, rng: random.Random) -> bytes:
    """A number of a text file replaced by a random token (the values a reader must check)."""
    spans = [m.span() for m in NUMBER.finditer(data)]
    if not spans:
        return mutate(data, rng)
    start, end = rng.choice(spans)
    return data[:start] + rng.choice(TOKENS) + data[end:]


def mutate_json(data: bytes, rng: random.Random) -> bytes:
    """A value (or key) anywhere in a JSON document replaced by one of another type or range, or deleted."""
    document = json.loads(data)
    containers = []

    def walk(node):
        if isinstance(node, dict):
            containers.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            containers.append(node)
            for value in node:
                walk(value)

    walk(document)
    node = rng.choice(containers)
    if node:
        key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
        if rng.random() < 0.2:
            del node[key]
        else:
            node[key] = rng.choice(JSON_VALUES)
    return json.dumps(document).encode()


def fix_png_crcs(data: bytes) -> bytes:
    """Recompute every chunk's CRC so that flipped bytes reach the decoder instead of the CRC check."""
    out = bytearray(data[:8])
    position = 8
    while position + 8 <= len(data):
        length = struct.unpack(">I", data[position:position + 4])[0]
        end = position + 8 + length
        if end + 4 > len(data):
            out += data[position:]
            return bytes(out)
        body = data[position + 4:end]
        out += data[position:end] + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
        position = end + 4
    out += data[position:]
    return bytes(out)


def _label_png(tmp: Path) -> bytes:
    label = np.zeros((12, 16), np.uint8)
    label[2:8, 3:10] = 8
    label[0, :] = 255
    save_label_png(tmp / "seed.png", label)
    return (tmp / "seed.png").read_bytes()


def _coco_reader(root: Path) -> Callable[[Path], None]:
    def read(path: Path) -> None:
        dataset = COCODataset(root, "train")
        for image_id in dataset.ids:
            dataset.image_labels(image_id)
            dataset.load_class_mask(image_id)
            dataset.instances(image_id)
    return read


def _collecting_xml_reader(path: Path) -> None:
    """``check_dataset``'s way: every problem collected, each one line naming the file."""
    problems: list[str] = []
    parse_voc_xml(path, image_size=(48, 64), problems=problems)
    assert all("\n" not in p and p.startswith(str(path)) for p in problems), problems
    if problems:
        raise WsssError(problems[0])


#: how each reader's inputs are mutated: the generic edits, and one aware of the format
MUTATORS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "voc_xml": mutate_numbers, "voc_xml_collect": mutate_numbers, "points": mutate_numbers,
    "scribbles": mutate_numbers, "coco_json": mutate_json,
    "label_png": lambda data, rng: fix_png_crcs(mutate(data, rng)),
}

READERS: dict[str, tuple[str, Callable[[Path], bytes], Callable[[Path], Callable[[Path], object]]]] = {
    "voc_xml": ("a.xml", lambda tmp: VOC_XML, lambda tmp: lambda path: parse_voc_xml(path, image_size=(48, 64))),
    "voc_xml_collect": ("a.xml", lambda tmp: VOC_XML, lambda tmp: _collecting_xml_reader),
    "points": ("a.txt", lambda tmp: POINTS, lambda tmp: lambda path: read_points(path, (48, 64))),
    "scribbles": ("a.xml", lambda tmp: SCRIBBLES, lambda tmp: lambda path: read_scribbles(path, (48, 64))),
    "coco_json": ("annotations/instances_train.json", lambda tmp: COCO, _coco_reader),
    "label_png": ("a.png", _label_png, lambda tmp: lambda path: load_label_png(path)),
}


@pytest.fixture
def memory_cap():
    """At most 2 GiB more address space while fuzzing: a reader that would allocate without bound (pycocotools
    rasterising a vertex at 1e21) fails with MemoryError here instead of taking the machine down."""
    import os
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    used = int(open("/proc/self/statm").read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    cap = used + (2 << 30)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.mark.parametrize("reader", list(READERS))
def test_mutated_files_read_cleanly_or_fail_in_one_line(reader, tmp_path, memory_cap):
    name, seed_bytes, make_reader = READERS[reader]
    original = seed_bytes(tmp_path)
    read = make_reader(tmp_path)
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(original)
    read(path)  # the unmutated file is valid
    rng = random.Random(f"wsss-fuzz-{reader}")
    outcomes = {"read": 0, "error": 0}
    start = time.monotonic()
    for case in range(PER_READER):
        data = MUTATORS[reader](original, rng) if case % 2 else mutate(original, rng)
        path.write_bytes(data)
        try:
            read(path)
            outcomes["read"] += 1
        except WsssError as exc:
            message = str(exc)
            assert "\n" not in message and str(path.parent) in message, (case, message, data)
            outcomes["error"] += 1
        except Exception as exc:  # noqa: BLE001 - the point of the test
            pytest.fail(f"{reader} case {case}: {type(exc).__name__}: {exc}\ninput: {data!r}")
    elapsed = time.monotonic() - start
    assert outcomes["error"] > PER_READER // 10  # the mutations do break the files
    assert elapsed < 30, f"{PER_READER} {reader} inputs took {elapsed:.1f}s"


def _coco_with(edit: Callable[[dict], None]) -> bytes:
    document = json.loads(COCO)
    edit(document)
    return json.dumps(document).encode()


def _huge_png() -> bytes:
    """A valid PNG header claiming 100000x100000 pixels (a decompression bomb for PIL)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", 100000, 100000, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 10)) + chunk(b"IEND", b"")


#: what the fuzzer found (each was a raw exception, a segfault or an unbounded allocation before)
FOUND = [
    ("voc_xml", VOC_XML.replace(b"<width>64", b"<width>inf"), "missing or invalid <size><width>"),
    ("voc_xml", VOC_XML.replace(b"<difficult>0", b"<difficult>inf"), "<difficult> 'inf' is not 0 or 1"),
    ("voc_xml", VOC_XML.replace(b"<ymax>40", b"<ymax>99999999999999999999"), "lies outside the 64x48 image"),
    ("points", b"1e400 3 1 1\n", "fields must be finite numbers"),
    ("coco_json", b'{"images": [\xb0]}', "malformed JSON (not UTF-8 text"),
    ("coco_json", _coco_with(lambda d: d["images"][0].update(id=[1, 2])), "id [1, 2] is not an integer or a string"),
    ("coco_json", _coco_with(lambda d: d["annotations"][0].update(area="x")), "area 'x' is not a number >= 0"),
    ("coco_json", _coco_with(lambda d: d["annotations"][1]["segmentation"]["counts"].__setitem__(0, -1)),
     "malformed RLE counts"),
    ("coco_json", _coco_with(lambda d: d["annotations"][2]["segmentation"].update(counts="e4?Q1kb1")),
     "malformed compressed RLE counts"),
    ("coco_json", _coco_with(lambda d: d["annotations"][0]["segmentation"][0].__setitem__(2, 2**70)),
     "polygon vertex outside the 64x48 image"),
    ("label_png", _huge_png(), "label PNG too large to decode"),
]


@pytest.mark.parametrize("reader, data, message", FOUND, ids=[f"{r}-{n}" for n, (r, _, _) in enumerate(FOUND)])
def test_what_the_fuzzer_found(reader, data, message, tmp_path, memory_cap):
    name, _, make_reader = READERS[reader]
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    with pytest.raises(WsssError, match=re.escape(message)) as info:
        make_reader(tmp_path)(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
