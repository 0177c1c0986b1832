"""``minivoc``: a small synthetic dataset generated from a seed, in exact PASCAL VOC 2012 layout.

It stands in for VOC in the demo and the tests: same folders, same file
formats, same class names and ids, so every reader and stage that works on
VOC works on it unchanged, and the full pipeline runs in minutes on 2 CPU cores.

Layout written under ``root``::

    JPEGImages/<id>.jpg                   RGB, JPEG quality ``jpeg_quality`` (fixed, no metadata)
    SegmentationClass/<id>.png            palette PNG (VOC palette): 0 bg, 1..20, 255 void band
    SegmentationObject/<id>.png           palette PNG: 0 bg, k = k-th <object> of the XML, 255 void band
    Annotations/<id>.xml                  VOC XML: size, segmented=1, objects with 1-based inclusive boxes
    Points/<id>.txt                       one line per instance "x y class_index confidence" (BESTIE/P2Seg:
                                          0-based pixel x, y; class_index 0..19; confidence 1.0)
    Scribbles/<id>.xml                    ScribbleSup PASCAL format: <polygon><tag>class</tag><point><X/><Y/>...
                                          one polyline per instance, then polylines tagged "background"
    ImageSets/Segmentation/{train,val,trainval}.txt
    ImageSets/Main/{train,val,trainval}.txt and <class>_{train,val,trainval}.txt ("id  1" / "id -1")
    minivoc.json                          generator parameters, seed and per-class counts

With ``layout="coco"`` (:mod:`~wsss.data.minivoc.coco_layout`, the dataset ``minicoco``) the same images
and masks are written as COCO instances instead: ``annotations/instances_{train,val}.json`` (the void
band an ignore region), ``{train,val}/<id>.jpg``, ``Points/`` and ``Scribbles/`` as above, ``minivoc.json``.

Image ids are VOC-like, ``<year>_<number:06d>`` (``2026_000001`` ...), numbered
over all images; the val images are a seeded random subset, so the two splits
interleave as VOC's do.

Content. Each of the 20 classes has an appearance family (:data:`CLASS_SPECS`):
a set of parts (body, legs, wheels, head ...) of fixed shapes and layout, a
list of body colours drawn from a palette *shared* by many classes, and one
small discriminative part (``head=True``) with a class-specific texture and
colour pair (stripes, checker, dots, rings, grid, spots, noise, waves, bars).
Per instance the size, aspect (each axis), rotation, mirror, colours (HSV
jitter), texture frequency and phase, shading direction and blob outlines vary.
Images (sizes drawn per image, default 144..192 × 112..160) hold 1..4 objects
of one or several classes, often touching or occluding each other, sometimes
truncated by the image border or crossed by a thin occluder (a wire or pole,
labelled background), on one of several background texture families
(gradient, grass, wood, tiles, stones, fabric, camouflage blotches, and
horizon scenes combining two of them), with distractor clutter that belongs to
no class. Background colours are sometimes taken from the object palette, so
an object boundary is usually, but not always, visible in colour. A lighting
gradient, mild blur, sensor noise and JPEG compression finish the image.

The difficulty levers for weak supervision: the discriminative part is small
relative to the whole object and the rest (plain body in a shared colour)
looks like other classes, so class activation maps cover the head and miss
much of the body; thin parts (legs, masts, handles) are lost by coarse maps;
touching instances of one class merge; similar background colours make
boundaries ambiguous.

Ground truth follows VOC: a ``255`` void band (VOC's is about 5 px wide on
500×375 photos; here ``void_width`` px, by default that width scaled to the
image, at least 2 px) along every object border, object/object borders
included. XML boxes enclose each object's visible mask (void band included:
the box of ``SegmentationObject == k`` grown by up to half the band width),
1-based and inclusive. Points and scribbles lie inside the object's
non-void mask, away from its border, as an annotator would click or draw.

Determinism: the same ``seed`` and parameters give byte-identical files
(every image has its own random stream derived from ``(seed, image number)``;
JPEG and PNG writers are fixed and carry no time stamps). A different seed
gives a different dataset with the same statistics. Every class appears in
each split of at least 20 images (the first object of image ``j`` of a split
cycles through a seeded permutation of the 20 classes).

Atomicity: :func:`generate` writes everything into a hidden sibling folder
(``.<root name>.tmp-<pid>``) and only then moves it onto ``root``; entries of an
existing ``root`` listed in ``keep`` (default ``.hydra``, which Hydra writes into
the stage's output folder before the stage runs) are carried over into the new
folder, every other old entry is dropped. A killed run leaves ``root`` as it was
(plus the hidden temporary folder, removed by the next run).

Modules, one concept each: :mod:`~wsss.data.minivoc.specs` (palette and class appearance
families), :mod:`~wsss.data.minivoc.params` (:class:`MinivocParams`),
:mod:`~wsss.data.minivoc.sample` (:class:`Sample`), :mod:`~wsss.data.minivoc.render`
(one image: objects, backgrounds, clutter, composition, void band),
:mod:`~wsss.data.minivoc.annotators` (simulated clicks and strokes),
:mod:`~wsss.data.minivoc.writers` (file formats) and :mod:`~wsss.data.minivoc.generation`
(split planning and :func:`generate`). Their public names are re-exported here.
"""

from wsss.data.minivoc.coco_layout import CocoLayoutWriter
from wsss.data.minivoc.generation import FORMAT_VERSION, LAYOUTS, GenerationReport, generate, split_plan
from wsss.data.minivoc.params import MinivocParams
from wsss.data.minivoc.render import render_sample
from wsss.data.minivoc.sample import ObjectAnnotation, Sample
from wsss.data.minivoc.specs import BG_COLORS, CLASS_SPECS, PALETTE, RGB, ClassSpec, Part, Tex
from wsss.data.minivoc.writers import FOLDER_NAME, points_txt, scribble_xml, voc_xml, write_sample

__all__ = [
    "BG_COLORS",
    "CLASS_SPECS",
    "FOLDER_NAME",
    "FORMAT_VERSION",
    "PALETTE",
    "RGB",
    "ClassSpec",
    "CocoLayoutWriter",
    "GenerationReport",
    "LAYOUTS",
    "MinivocParams",
    "ObjectAnnotation",
    "Part",
    "Sample",
    "Tex",
    "generate",
    "points_txt",
    "render_sample",
    "scribble_xml",
    "split_plan",
    "voc_xml",
    "write_sample",
]
