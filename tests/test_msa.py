"""MSA's classifier parts (wsss.cam.msa): AP, DCR and IPC against known answers and brute-force references."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from wsss.cam.classifier import CAMClassifier
from wsss.cam.msa import (MSA_DEFAULTS, AffinityPropagation, AssociationEncoder, DynamicReassembly, MSAClassifier, MSASettings,
                          ipc_loss, reassemble)

pytestmark = pytest.mark.usefixtures("kernels_built")

ALL_OFF = MSASettings(dcr=False, ap=False, ipc=False)


def _assoc(batch: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 9, height, width, generator=generator).softmax(dim=1)


def _centre_assoc(batch: int, height: int, width: int) -> torch.Tensor:
    """Every pixel wholly in its own cell: superpixel pooling is the plain cell mean."""
    assoc = torch.zeros(batch, 9, height, width, dtype=torch.float64)
    assoc[:, 4] = 1
    return assoc


def _classifier(settings: MSASettings, seed: int = 0) -> MSAClassifier:
    torch.manual_seed(seed)
    return MSAClassifier("resnet10", 16, width=8, settings=settings)


# --- AP -------------------------------------------------------------------------------------------------------

def test_ap_with_identity_affinity_keeps_the_scores():
    scores = torch.randn(2, 5, 3, 4, dtype=torch.float64)
    identity = torch.eye(12, dtype=torch.float64).expand(2, 12, 12)
    assert torch.equal(AffinityPropagation(0.6, 8).propagate(scores, identity), scores)


def _brute_force_ap(scores, features, threshold, iterations):
    """Loops over pixel pairs: cosine, clamp, threshold, column normalisation, then S_j ← Σ_i S_i A_ij."""
    batch, classes, height, width = scores.shape
    pixels = height * width
    result = torch.empty_like(scores)
    for b in range(batch):
        vectors = [features[b, :, p // width, p % width] for p in range(pixels)]
        affinity = [[0.0] * pixels for _ in range(pixels)]
        for i in range(pixels):
            for j in range(pixels):
                cosine = float(vectors[i] @ vectors[j] / (vectors[i].norm() * vectors[j].norm()))
                value = min(max(cosine, 0.01), 0.999)
                affinity[i][j] = value if value >= threshold else 0.0
        for j in range(pixels):
            total = sum(affinity[i][j] for i in range(pixels))
            for i in range(pixels):
                affinity[i][j] /= total
        current = [[float(scores[b, k, p // width, p % width]) for p in range(pixels)] for k in range(classes)]
        for _ in range(iterations):
            current = [[sum(row[i] * affinity[i][j] for i in range(pixels)) for j in range(pixels)] for row in current]
        result[b] = torch.tensor(current, dtype=scores.dtype).view(classes, height, width)
    return result


def test_ap_matches_a_brute_force_loop_on_hand_made_features():
    # 2-d features at angles 0°, 30°, 60°, 90° (cosines 0.87, 0.5, 0 …): γ = 0.6 keeps only the 30° neighbours,
    # the clamp turns the self-affinity into 0.999 and the 90° pair into 0.01 (then cut).
    angles = torch.tensor([0.0, 30.0, 60.0, 90.0], dtype=torch.float64).deg2rad()
    features = (3 * torch.stack([angles.cos(), angles.sin()])).view(1, 2, 2, 2)  # lengths do not matter
    scores = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 2.0, -1.0, 0.5]], dtype=torch.float64).view(1, 2, 2, 2)
    ap = AffinityPropagation(threshold=0.6, iterations=3)
    affinity = ap.affinity(features)[0]
    cos30 = 3 ** 0.5 / 2
    expected_first_column = torch.tensor([0.999, cos30, 0, 0], dtype=torch.float64) / (0.999 + cos30)
    torch.testing.assert_close(affinity[:, 0], expected_first_column)
    torch.testing.assert_close(affinity.sum(dim=0), torch.ones(4, dtype=torch.float64))
    torch.testing.assert_close(ap(scores, features), _brute_force_ap(scores, features, 0.6, 3))
    random_features, random_scores = torch.randn(2, 3, 2, 3, dtype=torch.float64), torch.randn(2, 4, 2, 3, dtype=torch.float64)
    torch.testing.assert_close(AffinityPropagation(0.3, 8)(random_scores, random_features),
                               _brute_force_ap(random_scores, random_features, 0.3, 8))


def test_ap_column_of_a_zero_feature_pixel_stays_finite():
    features = torch.randn(1, 3, 2, 2, dtype=torch.float64)
    features[..., 0, 0] = 0
    propagated = AffinityPropagation(0.6, 8)(torch.randn(1, 2, 2, 2, dtype=torch.float64), features)
    assert torch.isfinite(propagated).all() and (propagated[..., 0, 0] == 0).all()


# --- DCR ------------------------------------------------------------------------------------------------------

def test_reassembly_with_an_all_centre_kernel_is_the_identity():
    features = torch.randn(2, 7, 5, 6, dtype=torch.float64)
    kernel = torch.zeros(2, 9, 5, 6, dtype=torch.float64)
    kernel[:, 4] = 1
    assert torch.equal(reassemble(features, kernel), features)


def test_reassembly_matches_a_brute_force_neighbour_sum():
    features, kernel = torch.randn(1, 2, 3, 4, dtype=torch.float64), torch.rand(1, 9, 3, 4, dtype=torch.float64)
    padded = F.pad(features, (1, 1, 1, 1))
    expected = sum(kernel[:, t:t + 1] * padded[:, :, 1 + dy:4 + dy, 1 + dx:5 + dx]
                   for t, (dy, dx) in enumerate((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)))
    torch.testing.assert_close(reassemble(features, kernel), expected)


def test_dcr_block_shapes_and_kernel_is_a_distribution():
    guide = AssociationEncoder(16)(_assoc(2, 48, 80).float())
    assert guide.shape == (2, 128, 3, 5)
    features = torch.randn(2, 32, 3, 5, requires_grad=True)
    gated, kernel = DynamicReassembly(32)(features, guide)
    assert gated.shape == (2, 32, 3, 5) and kernel.shape == (2, 9, 3, 5)
    torch.testing.assert_close(kernel.sum(dim=1), torch.ones(2, 3, 5))
    (grad,) = torch.autograd.grad(kernel.square().sum(), features, allow_unused=True)
    assert grad is None  # the kernel sees the features detached, as in MSA


@pytest.mark.parametrize("size", [(48, 80), (112, 64)])
def test_classifier_logits_and_cam_shapes_on_non_square_sizes(size):
    model = _classifier(MSA_DEFAULTS).eval()
    image = torch.randn(2, 3, *size)
    with torch.no_grad():
        logits = model(image, _assoc(2, *size))
        cam = model.cam(image, _assoc(2, *size))
    assert logits.shape == (2, 20)
    assert cam.shape == (2, 20, size[0] // 16, size[1] // 16) and (cam >= 0).all()


# --- IPC ------------------------------------------------------------------------------------------------------

def _two_region_case():
    """6×6 cells of 16 px, class 3 on a blob crossing every patch border; colour per region; hard probabilities."""
    foreground = torch.zeros(6, 6, dtype=torch.bool)
    foreground[1:5, 2:5] = True
    cam = torch.zeros(1, 20, 6, 6, dtype=torch.float64)
    cam[0, 3] = foreground.double()
    pixels = foreground.repeat_interleave(16, 0).repeat_interleave(16, 1)
    image = torch.where(pixels, torch.tensor([0.9, -0.2, 0.4], dtype=torch.float64)[:, None, None],
                        torch.tensor([-1.0, 0.3, 0.1], dtype=torch.float64)[:, None, None])[None]
    return cam, image, _centre_assoc(1, 96, 96)


def _cell_noise(seed: int) -> torch.Tensor:
    """Colour noise constant on each 16-px cell (pixel noise would average out in the pooling)."""
    noise = 0.3 * torch.randn(1, 3, 6, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return noise.repeat_interleave(16, 2).repeat_interleave(16, 3)


def test_ipc_is_zero_for_hard_probabilities_and_colours_constant_per_region():
    # Zero case: P one-hot ⇒ μ_c is the mean target over region c of the patch; if the pooled, L2-normalised
    # target is constant on each region (constant colours per region, an association that does not mix the
    # regions: here all mass on the own cell), every cell is rebuilt exactly.
    cam, image, assoc = _two_region_case()
    settings = MSA_DEFAULTS
    assert ipc_loss(cam, image, assoc, settings).item() == pytest.approx(0.0, abs=1e-12)
    assert ipc_loss(cam, 2.5 * image, assoc, settings).item() == pytest.approx(0.0, abs=1e-12)  # L2-normalised
    noisy = image + _cell_noise(0)
    assert ipc_loss(cam, noisy, assoc, settings).item() > 1e-3
    assert ipc_loss(0.5 * cam + 0.25, image, assoc, settings).item() > 1e-3  # soft probabilities mix the prototypes


def test_ipc_skipped_images_contribute_nothing():
    cam, image, assoc = _two_region_case()
    settings = MSA_DEFAULTS
    noisy = image + _cell_noise(1)
    alone = ipc_loss(cam, noisy, assoc, settings)
    other = torch.randn(image.shape, generator=torch.Generator().manual_seed(2), dtype=image.dtype)
    for skipped_cam in (torch.zeros_like(cam), torch.full_like(cam, 0.05), torch.ones_like(cam)):  # no fg / no bg
        batch = ipc_loss(torch.cat([cam, skipped_cam]), torch.cat([noisy, other]), torch.cat([assoc, assoc]), settings)
        torch.testing.assert_close(batch, alone)
        assert ipc_loss(skipped_cam, other, assoc, settings).item() == 0.0


def test_ipc_ignores_padding_and_gives_the_cam_a_gradient():
    cam, image, assoc = _two_region_case()
    image = image + _cell_noise(3)
    soft = (0.8 * cam + 0.1 * torch.rand(cam.shape, generator=torch.Generator().manual_seed(4), dtype=cam.dtype))
    soft.requires_grad_()
    loss = ipc_loss(soft, image, assoc, MSA_DEFAULTS)
    (grad,) = torch.autograd.grad(loss, soft)
    assert torch.isfinite(grad).all() and grad[:, 3].abs().sum() > 0
    padded = image.clone()
    padded[..., 80:] = 0  # the last cell column is padding (mean colour)
    valid = torch.ones(1, 1, 96, 96, dtype=torch.bool)
    valid[..., 80:] = False
    torch.testing.assert_close(ipc_loss(soft, padded, assoc, MSA_DEFAULTS),
                               ipc_loss(soft, image, assoc, MSA_DEFAULTS, valid=valid))


# --- the classifier -------------------------------------------------------------------------------------------

def test_all_parts_off_is_the_cam_classifier():
    torch.manual_seed(0)
    reference = CAMClassifier("resnet10", 16, width=8).eval()
    model = _classifier(ALL_OFF, seed=1).eval()
    assert model.state_dict().keys() == reference.state_dict().keys()
    model.load_state_dict(reference.state_dict())
    image = torch.randn(2, 3, 48, 80)
    with torch.no_grad():
        assert torch.equal(model(image), reference(image))
        assert torch.equal(model.cam(image), reference.cam(image))
    assert [len(group) for group in model.param_groups()] == [len(group) for group in reference.param_groups()]


def test_missing_assoc_is_a_value_error():
    image = torch.randn(1, 3, 32, 32)
    with pytest.raises(ValueError, match="assoc .* required with dcr on"):
        _classifier(MSASettings(dcr=True))(image)
    with pytest.raises(ValueError, match="assoc"):
        _classifier(MSA_DEFAULTS).cam(image)
    with pytest.raises(ValueError, match="assoc .* required with ipc on"):
        _classifier(MSASettings(ipc=True)).loss(image, torch.ones(1, 20))
    assert _classifier(MSASettings(ap=True)).cam(image).shape == (1, 20, 2, 2)  # AP needs no assoc


def test_param_groups_split_trunk_from_new_modules():
    model = _classifier(MSA_DEFAULTS)
    trunk, new = model.param_groups()
    assert len(trunk) + len(new) == len(list(model.parameters()))
    names = {id(p): name for name, p in model.named_parameters()}
    assert all(names[id(p)].startswith("trunk.") for p in trunk)
    assert {names[id(p)].split(".")[0] for p in new} == {"classifier", "guide", "dcr3", "dcr4"}


def test_three_training_steps_give_finite_changing_losses():
    model = _classifier(MSA_DEFAULTS)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    generator = torch.Generator().manual_seed(0)
    image, assoc = torch.randn(2, 3, 64, 96, generator=generator), _assoc(2, 64, 96)
    labels = torch.zeros(2, 20)
    labels[0, 3] = labels[1, 7] = labels[1, 11] = 1
    totals = []
    for _ in range(3):
        total, parts = model.loss(image, labels, assoc)
        torch.testing.assert_close(parts["cls"], F.multilabel_soft_margin_loss(model(image, assoc), labels))
        assert set(parts) == {"cls", "ipc", "logits"} and all(torch.isfinite(v).all() for v in parts.values())
        torch.testing.assert_close(parts["logits"], model(image, assoc))
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        totals.append(total.item())
    assert all(map(torch.isfinite, map(torch.tensor, totals)))
    assert totals[-1] != totals[0]


# ------------------------------------------------------------------ the stages (train_classifier_msa, make_cam_msa)
def _stage(module: str, *overrides: str):
    import subprocess
    import sys

    from wsss.config import REPO_ROOT

    return subprocess.run([sys.executable, "-m", f"stages.{module}", *overrides, "num_threads=1"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_msa_classifier_and_its_superpixel_upsampled_cams_end_to_end(tmp_path):
    """The superpixel net, MSA's classifier on it (every part on) and its CAMs upsampled through it, on a tiny VOC
    folder of odd-sized images; the same CAMs upsampled bilinearly are scored beside."""
    import json

    import numpy as np

    from tests.voc_fixture import make_tiny_voc
    from wsss.cam.inference import load_classifier

    root = make_tiny_voc(tmp_path / "VOC", n_train=3, n_val=1, size=(42, 50))
    dataset = ("dataset=folder", f"dataset.root={root}", "dataset.name=tiny")
    spx = tmp_path / "superpixel"
    run = _stage("train_superpixel", *dataset, "superpixel=minivoc", "model.width=0.25", "train.epochs=1",
                 "train.batch_size=2", "train.crop=32", "train.resize_long=[40,56]", f"out_dir={spx}",
                 f"work_dir={tmp_path / 'w1'}")
    assert run.returncode == 0, run.stderr[-3000:]
    classifier = tmp_path / "classifier"
    schedule = ("classifier=minivoc", "backbone.width=8", "train.epochs=1", "train.batch_size=2", "train.crop=32",
                "train.resize_long=[40,56]", "val_images=1", "val_split=val")
    run = _stage("train_classifier", *dataset, *schedule, "msa.dcr=true", "msa.ap=true", "msa.ipc=true",
                 f"superpixel_dir={spx}", f"out_dir={classifier}", f"work_dir={tmp_path / 'w2'}")
    assert run.returncode == 0, run.stderr[-3000:]
    history = json.loads((classifier / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1] and all(np.isfinite(h["ipc"]) for h in history)
    assert all("val" in h for h in history)
    model = load_classifier(classifier)
    assert isinstance(model, MSAClassifier) and model.settings.dcr and model.settings.ap and model.settings.ipc
    cams = tmp_path / "cam"
    run = _stage("make_cam", *dataset, "upsample=superpixel", "scales=[1.0,0.5]", f"classifier_dir={classifier}",
                 f"superpixel_dir={spx}", f"out_dir={cams}", "workers=1")
    assert run.returncode == 0, run.stderr[-3000:]
    ids = ["2000_000000", "2000_000001", "2000_000002"]
    keys = json.loads((cams / "keys.json").read_text())
    for image_id in ids:
        highres = np.load(cams / "highres" / f"{image_id}.npy")
        assert highres.shape == (len(keys[image_id]), 42, 50) and np.isfinite(highres).all()
        assert highres.max() <= 1.0 + 1e-3
        assert np.load(cams / "stride4" / f"{image_id}.npy").shape == (len(keys[image_id]), 11, 13)
        assert (cams / "labels" / f"{image_id}.png").is_file() and (cams / "bilinear" / "labels" / f"{image_id}.png").is_file()
    superpixel, bilinear = (json.loads((cams / f / "metrics.json").read_text()) for f in ("labels", "bilinear/labels"))
    assert superpixel["protocol"]["upsample"] == "superpixel" and bilinear["protocol"]["upsample"] == "bilinear"
    assert superpixel["n_images"] == bilinear["n_images"] == 3
    # without the superpixel network: one line naming the file
    run = _stage("make_cam", *dataset, "upsample=superpixel", f"classifier_dir={classifier}",
                 f"superpixel_dir={tmp_path / 'none'}", f"out_dir={tmp_path / 'cam2'}", "workers=1")
    assert run.returncode != 0 and str(tmp_path / "none") in run.stderr.strip().splitlines()[-1]
