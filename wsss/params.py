"""Parameter dataclasses of the library's algorithms, each default written once.

The algorithm modules re-export them (``wsss.crf.CRFParams``, ``wsss.propagation.apro.AProParams``, …)
and the Hydra schemas (:mod:`wsss.schemas`) build their config nodes from them
(:func:`wsss.schemas.common.config_fields`). This module imports nothing heavy (no torch, numpy or
Hydra): composing a config, as Snakemake does while planning, must stay cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class CRFParams:
    """Dense CRF pairwise kernels and iterations (:mod:`wsss.crf`).

    PSA: (3,3; 80,13,10; 10). IRN labels: (3,3; 50,5,10; 10).
    """

    iterations: int = 10
    gaussian_sxy: float = 3.0
    gaussian_compat: float = 3.0
    bilateral_sxy: float = 80.0
    bilateral_srgb: float = 13.0
    bilateral_compat: float = 10.0


@dataclass(frozen=True)
class RandomWalkParams:
    """The CAM random walk (PSA/IRN, :mod:`wsss.propagation.random_walk`). ``radius``: AffinityNet pair radius;
    ``background``: ``power`` (PSA: bg = (1 − max cam)^α, walked with the classes) or ``constant`` (IRN:
    classes walked alone, divided by their max, bg = ``bg_threshold``)."""

    radius: int = 5
    beta: float = 10.0
    #: walk steps t (PSA/IRN: 2^8 = 256)
    steps: int = 256
    background: str = "power"
    alpha: float = 16.0
    bg_threshold: float = 0.25


@dataclass(frozen=True)
class BoundaryWalkParams:
    """RETAB's two-stage CAM walk gated by predicted boundaries (:mod:`wsss.weakshot.walk`): PSA's walk of the CAMs
    with background ``(1 − max)^alpha`` (RETAB: α 16, β 8, t 256), stage 1 on the edges whose two ends are not boundary,
    stage 2 (``second_stage``) letting only the boundary pixels receive, from every neighbour. The boundary pixels are
    ``train_boundary``'s (its ``threshold``); a cell of the affinity grid is boundary when any of its pixels is."""

    radius: int = 5
    beta: float = 8.0
    steps: int = 256
    alpha: float = 16.0
    #: which pairs stage 1 keeps: ``endpoints`` (RETAB: both ends off the boundaries; a pair may jump over a thin
    #: boundary) or ``path`` (also every cell on the straight line between them, as IRN's path affinities)
    gate: str = "endpoints"
    second_stage: bool = True


@dataclass(frozen=True)
class SeededWalkParams:
    """``radius``: AffinityNet pair radius; ``beta``, ``steps``: the walk (PSA: 8/10, 256); ``alpha``: CAM background power."""

    radius: int = 5
    beta: float = 10.0
    steps: int = 256
    #: CAM background power (1 − max cam)^alpha
    alpha: float = 16.0
    #: reset the seeded cells to their one-hot every this many steps (0: PSA's free walk)
    clamp_every: int = 16


@dataclass(frozen=True)
class A2GNNParams:
    """A2GNN's defaults (SEEDS_ANATOMY §1.8, §7); ``radius`` is the window radius in nodes."""

    radius: int = 3
    #: node stride: AffinityNet features are average-pooled to it (A2GNN's nodes are stride-8 cells);
    #: 0 keeps the AffinityNet's own stride
    graph_stride: int = 8
    hidden: int = 256
    layers: int = 3
    dropout: float = 0.5
    lr: float = 0.03
    weight_decay: float = 5e-4
    epochs: int = 50
    #: early stopping (0: off, every phase runs ``epochs``, the seed's schedule): a phase ends once its loss has
    #: not fallen below ``(1 − stop_tolerance)`` × its best for this many epochs
    #: (:class:`wsss.propagation.a2gnn.PhaseSchedule`; ``python -m benchmarks.a2gnn --run``: same mIoU, ~4× fewer epochs)
    stop_patience: int = 5
    stop_tolerance: float = 0.02
    adjacency_weight: float = 10.0
    crf_weight: float = 0.3
    crf_radius: int = 5
    crf_sigma_xy: float = 6.0
    crf_sigma_rgb: float = 0.1
    rw_weight: float = 0.0
    rw_radius: int = 5
    rw_beta: float = 8.0
    rw_steps: int = 64
    rw_alpha: float = 6.0
    #: images trained together in one batch of steps (each keeps its own network and result); on 2 CPU cores
    #: batches of 4–8 measured 10–15 % slower per image than 1 (python -m benchmarks.a2gnn), so 1
    batch_images: int = 1


@dataclass(frozen=True)
class AProParams:
    """Minimax tree propagation + local propagation of the seeds (:mod:`wsss.propagation.apro`)."""

    zeta_global: float = 0.01
    zeta_label: float = 0.0
    guide_blur: float = 2.0
    #: the global pass runs on the image reduced (integer stride, cell means) to at most this side (0: full size)
    max_side: int = 96
    #: weight of the geodesic (TreeFilter) term in the global pass; 0 = APro's minimax pass alone
    geodesic_weight: float = 0.5
    #: TreeFilter edge cost ``‖Δguide‖²/ζ² + (step/σ)²`` (σ in cells of the global pass)
    geodesic_zeta: float = 0.1
    geodesic_sigma: float = 2.0
    kernel_size: int = 5
    zeta_local: float = 0.15
    iterations: int = 20
    prior_weight: float = 0.0
    background_prior: float = 1e-4
    alpha: float = 16.0
    #: exponent applied to the final scores before normalising (calibration for the CRF that follows)
    sharpen: float = 3.0


@dataclass(frozen=True)
class InstanceSettings:
    """How instances are cut from the semantic pseudo-labels (see :mod:`wsss.instances`)."""

    #: auto (by supervision: image/scribble → components, point → points, box → boxes), components, points, boxes
    cue: str = "auto"
    #: components: regions smaller than this fraction of the image are dropped (IRN: 1 %)
    min_fraction: float = 0.01
    #: points: class regions smaller than this (pixels) are left out (BESTIE: 50)
    min_component_px: int = 50
    #: points: points below this confidence are ignored (BESTIE's PAM peaks: 0.7; annotated points have 1.0)
    min_confidence: float = 0.0
    #: points: side of the square given to a point with no region of its class (0 = drop; P2Seg: 64)
    fallback_size: int = 0
    #: boxes: a box without pixels of its class → fill (the box itself) or drop
    empty_box: str = "fill"


@dataclass
class MaskRCNNSettings:
    """Architecture of :func:`wsss.retrain.maskrcnn_model.build_maskrcnn` (``model`` in ``conf/maskrcnn/<dataset>.yaml``,
    where ``init_from_classifier`` stands for ``init_trunk``)."""

    arch: str = "resnet50"
    #: trunk stage widths width·(1, 2, 4, 8) (64 = torchvision's ResNets, needed for ImageNet weights)
    width: int = 64
    pretrained: str = ""
    init_trunk: str = ""
    #: trunk stages trained, from the top (5 = all, 3 = torchvision's default with ImageNet weights)
    trainable_layers: int = 3
    #: BatchNorm frozen to its (pretrained) statistics, as torchvision's detection models
    frozen_bn: bool = True
    fpn_channels: int = 256
    representation_size: int = 1024
    mask_layers: Sequence[int] = (256, 256, 256, 256)
    #: anchor size per FPN level P2..P6 (3 aspect ratios each)
    anchor_sizes: Sequence[int] = (32, 64, 128, 256, 512)
    #: shorter image side: drawn from this list per training image; min_size_test at inference
    min_size_train: Sequence[int] = (800,)
    min_size_test: int = 800
    max_size: int = 1333
    rpn_pre_nms_train: int = 2000
    rpn_post_nms_train: int = 2000
    rpn_pre_nms_test: int = 1000
    rpn_post_nms_test: int = 1000
    rpn_batch_size: int = 256
    box_batch_size: int = 512
    score_threshold: float = 0.05
    detections_per_image: int = 100


@dataclass
class MaskRCNNTrainSettings:
    """Schedule of :func:`wsss.retrain.maskrcnn.train_maskrcnn` (``train`` in ``conf/maskrcnn/<dataset>.yaml``): iteration-based
    SGD (real momentum), linear warm-up then poly decay; ``batch_size`` is global (all GPUs)."""

    iterations: int = 20000
    batch_size: int = 16
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 1e-4
    power: float = 0.9
    warmup_iterations: int = 500
    warmup_factor: float = 0.001
    #: max gradient norm (0 = off)
    grad_clip: float = 0.0
    flip: bool = True
    checkpoint_every: int = 1000
    log_every: int = 20
    workers: int = 0
    sync_bn: bool = False


@dataclass(frozen=True)
class BoxMaskLossSettings:
    """APro's losses (``mask_loss`` of ``conf/train_maskrcnn.yaml``); defaults: APro's SOLOv2 head, but pass 1's ζ.

    ``kind``: ``mask`` trains on the instance pseudo-labels' masks (Mask R-CNN's own loss); ``filled_box`` on the
    annotated boxes as masks; ``apro`` on the boxes only, with the three losses below instead of a mask target.
    """

    kind: str = "mask"
    projection_weight: float = 3.0
    global_weight: float = 2.0
    local_weight: float = 1.0
    #: GP pass 1 (guided by the ImageNet-normalised image) and pass 2 (guided by pass 1's output). Pass 1: APro's
    #: Mask2Former value (its SOLOv2 head's 0.01 passes almost nothing on textured images: from a filled-box mask
    #: the box's background keeps 0.97 against the object's 1.00, ``python -m benchmarks.apro_loss``; on minivoc
    #: val mAP_r50 28.1 at 0.01, 42.6 at 0.03, 4.2 at 0.1, where the object cells are pulled down too)
    zeta_image: float = 0.03
    #: σ (px of the network's input) of the Gaussian blur of the guide image, as the offline APro propagator's
    #: ``guide_blur``: APro's guide is the image resized to the mask resolution (smooth); at ζ 0.01 an unblurred
    #: textured region's edges (median ‖Δg‖² ≈ 0.01 on minivoc) carry weight e^-100, no propagation at all
    guide_blur: float = 2.0
    zeta_mask: float = 0.07
    local_kernel: int = 5
    local_zeta: float = 0.15
    local_iterations: int = 20
    #: the two propagation losses ramp up linearly over the first this many iterations (0: full weight at once)
    warmup_iterations: int = 0
    #: the propagation runs on the RoI grown by this fraction of its size on each side (background to spread
    #: from: a positive RoI hugs its box); the losses count inside the RoI only
    context: float = 0.25


@dataclass
class MSASettings:
    """MSA's parts of the CAM classifier (SEEDS_ANATOMY §1.10), each switchable (all off: the plain classifier).

    ``dcr``: Dynamic Convolutional Reassembly of the layer3 / layer4 features by 3×3 kernels predicted from the
    superpixel association; ``ap``: the Affinity Propagation module on the logits (threshold ``ap_threshold`` γ,
    ``ap_iterations`` β), in training and inference; ``ipc``: the Intra-Patch Prototype Contrast loss (weight
    ``ipc_weight``, ``ipc_patches`` patches, images skipped unless their max foreground and background
    probabilities exceed ``ipc_ignore``). ``cell``: the superpixel grid cell (= the classifier's output stride).
    """

    dcr: bool = False
    ap: bool = False
    ipc: bool = False
    ap_threshold: float = 0.6
    ap_iterations: int = 8
    ipc_weight: float = 0.3
    ipc_patches: int = 9
    ipc_ignore: float = 0.1
    cell: int = 16

    @property
    def needs_superpixels(self) -> bool:
        """Whether the classifier reads the superpixel association (DCR and IPC do, AP does not)."""
        return self.dcr or self.ipc

    @property
    def enabled(self) -> bool:
        return self.dcr or self.ap or self.ipc


#: MSA's superpixel loss weights of the CIELAB and position reconstructions (SEEDS_ANATOMY §1.10); here, not in
#: wsss.superpixel.loss, so that the config schemas (read while Snakemake plans) need no torch
SUPERPIXEL_LAB_WEIGHT = 0.005
SUPERPIXEL_XY_WEIGHT = 0.005 * 0.003

#: a seed rule's / propagation's ``cam``: whose CAMs it reads, the plain classifier's or MSA's (``conf/camnet/msa.yaml``),
#: or none (CAM-free)
CAM_SOURCES = ("classifier", "msa", "none")
#: the kinds of ``BoxMaskLossSettings.kind``
MASK_LOSS_KINDS = ("mask", "filled_box", "apro")


@dataclass
class DeepLabModelSettings:
    """Network and initialisation of :func:`wsss.retrain.deeplab.make_deeplab` (``model`` in ``conf/deeplab/<dataset>.yaml``,
    where ``init_from_classifier`` stands for ``init_trunk``)."""

    arch: str = "resnet101"
    #: trunk stage widths width·(1, 2, 4, 8); 64 = torchvision's ResNets (needed for ImageNet weights)
    width: int = 64
    output_stride: int = 16
    aspp_rates: tuple[int, int, int] = (6, 12, 18)
    #: ASPP and head channels (torchvision's DeepLabHead: 256)
    head_channels: int = 256
    pretrained: str = ""
    init_checkpoint: str = ""
    init_trunk: str = ""


@dataclass
class DeepLabSchedule:
    """Schedule of :func:`wsss.retrain.deeplab.train_deeplab` (``train`` in ``conf/deeplab/<dataset>.yaml``): iteration-based
    SGD (real momentum) with poly decay; ``batch_size`` is the global batch (all GPUs)."""

    iterations: int = 20000
    batch_size: int = 10
    lr: float = 2.5e-4
    head_lr_mult: float = 10.0
    momentum: float = 0.9
    weight_decay: float = 5e-4
    power: float = 0.9
    crop: int = 321
    #: random rescale factor range of image and label before cropping
    scale_range: tuple[float, float] = (0.5, 1.5)
    checkpoint_every: int = 1000
    log_every: int = 20
    #: DataLoader worker processes
    workers: int = 0
    #: SyncBatchNorm under torchrun on CUDA
    sync_bn: bool = True


@dataclass
class DeepLabSettings(DeepLabSchedule, DeepLabModelSettings):
    """Model and schedule of :func:`wsss.retrain.deeplab.train_deeplab` (the model's fields first)."""


@dataclass(frozen=True)
class GallerySettings:
    """How a gallery is drawn (:func:`wsss.viz.gallery.build_gallery`; ``conf/make_gallery.yaml``, ``conf/compare.yaml``)."""

    #: longest side of a thumbnail in pixels
    thumb_size: int = 160
    jpeg_quality: int = 85
    #: images per page (the page's "per page" control changes it)
    page_size: int = 50
    #: CAM heat maps per image at most (strongest classes first)
    max_cams: int = 4
    #: 0 = every image of the split
    max_images: int = 0
    #: sample figures for the Snakemake report (worst to best final IoU)
    report_samples: int = 6
    #: tile size of a report figure
    report_tile: int = 192
    title: str = "wsss gallery"
    #: offer "A − B" sort keys for every pair of stages, not only consecutive ones (the recipe comparison)
    pairwise: bool = False


@dataclass
class P2SegModelSettings:
    """The P2Seg network (:class:`wsss.p2seg.model.P2SegNet`; ``model`` in ``conf/p2seg/<dataset>.yaml``, where
    ``init_from_classifier`` stands for ``init_trunk``)."""

    arch: str = "resnet50"
    #: trunk stage widths width·(1, 2, 4, 8) (64 = torchvision's ResNets, needed for ImageNet weights)
    width: int = 64
    output_stride: int = 16
    aspp_rates: tuple[int, int, int] = (6, 12, 18)
    decoder_channels: int = 256
    head_channels: int = 128
    embedding_channels: int = 64
    #: decoder cells (stride 4) per affinity cell side: the affinity grid's stride is 4·affinity_pool
    affinity_pool: int = 4
    pretrained: str = ""
    init_trunk: str = ""


@dataclass
class P2SegSchedule:
    """Schedule, targets and losses of :func:`wsss.p2seg.train.train_p2seg` (``train`` in ``conf/p2seg/<dataset>.yaml``).

    Adam with a linear warm-up then poly decay; ``batch_size`` is global (all GPUs). ``iterations`` is the whole
    run, split evenly over ``refine_rounds + 1`` rounds: each round after the first trains on targets rebuilt from
    the network's own predictions (self-refinement). Loss weights: P2Seg's (semantic 1, centre 200, offset 0.01,
    affinity 1); ``i2s_weight``: the cross-entropy of the affinity-refined semantic probabilities.
    """

    iterations: int = 50000
    batch_size: int = 8
    lr: float = 5e-5
    weight_decay: float = 0.0
    power: float = 0.9
    warmup_iterations: int = 2000
    warmup_factor: float = 0.001
    crop: int = 416
    scale_range: tuple[float, float] = (0.7, 1.3)
    #: Gaussian σ of the centre heatmaps (pixels)
    sigma: float = 6.0
    #: class regions smaller than this (pixels) give no offset target (BESTIE: 50)
    min_component_px: int = 50
    #: points below this confidence are not trained on (annotated points: 1.0; BESTIE's PAM peaks: 0.7)
    min_confidence: float = 0.0
    refine_rounds: int = 1
    semantic_weight: float = 1.0
    centre_weight: float = 200.0
    offset_weight: float = 0.01
    affinity_weight: float = 1.0
    i2s_weight: float = 1.0
    grad_clip: float = 0.0
    checkpoint_every: int = 1000
    log_every: int = 20
    workers: int = 0
    sync_bn: bool = True


@dataclass(frozen=True)
class P2SegExportSettings:
    """The instances of :func:`wsss.p2seg.targets.point_instances` (``export`` in ``conf/p2seg/<dataset>.yaml``)."""

    #: side of the square given to a point left without pixels (P2Seg: 64), with ``fallback_score`` (P2Seg: 0.5)
    fallback_size: int = 64
    fallback_score: float = 0.5
