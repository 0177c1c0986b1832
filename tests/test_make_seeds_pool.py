"""make_seeds under image tags runs its CRFs in a pool of ``workers`` processes: the bytes of the loop."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from tests.test_bad_inputs import _run_stage
from tests.voc_fixture import make_tiny_voc


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    """A tiny VOC folder (4 train images, 48x64) and a CAM folder of smooth random maps for two classes."""
    base = tmp_path_factory.mktemp("seeds_pool")
    root = make_tiny_voc(base / "VOC2012", n_train=4, n_val=1)
    cam_dir = base / "cam"
    (cam_dir / "highres").mkdir(parents=True)
    ids = (root / "ImageSets/Segmentation/train.txt").read_text().split()
    (cam_dir / "keys.json").write_text(json.dumps({image_id: [8, 12] for image_id in ids}))
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:64]
    for image_id in ids:
        centres = rng.uniform([8, 8], [40, 56], size=(2, 2))
        cam = np.stack([np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 150.0) for cy, cx in centres]).astype(np.float32)
        np.save(cam_dir / "highres" / f"{image_id}.npy", cam)
    return root, cam_dir


def _files(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and ".hydra" not in p.parts}


@pytest.mark.parametrize("method", ["psa", "irn"])
def test_the_pool_writes_the_bytes_of_the_loop(upstream, tmp_path, capfd, method):
    root, cam_dir = upstream
    runs = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        status, err = _run_stage(f"make_seeds dataset=voc dataset.root={root} supervision=image split=train "
                                 f"cam_dir={cam_dir} image.method={method} out_dir={out} "
                                 f"paths.results={tmp_path / 'results'} workers={workers}", capfd)
        assert status == 0, err
        assert "[make_seeds] 4/4 images (100.0%)" in err
        runs[workers] = _files(out)
    assert len(runs[1]) == 4 + 2 and {"metrics.json", "per_image.json"} <= set(runs[1])
    assert runs[1] == runs[2]
    labels = {int(v) for name, data in runs[1].items() if name.endswith(".png")
              for v in np.unique(np.asarray(Image.open(io.BytesIO(data))))}
    assert {0, 255} <= labels and labels & {8, 12}  # seeds of both kinds, not all unknown


def test_a_bad_cam_in_a_worker_is_the_loops_one_line_error(upstream, tmp_path, capfd):
    root, cam_dir = upstream
    broken = tmp_path / "cam"
    (broken / "highres").mkdir(parents=True)
    (broken / "keys.json").write_bytes((cam_dir / "keys.json").read_bytes())
    for path in sorted((cam_dir / "highres").iterdir()):
        cam = np.load(path)
        if path.stem.endswith("2"):
            cam[0, 1, 1] = np.nan
        np.save(broken / "highres" / path.name, cam)
    lines = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        status, err = _run_stage(f"make_seeds dataset=voc dataset.root={root} supervision=image split=train "
                                 f"cam_dir={broken} out_dir={out} paths.results={tmp_path / 'results'} "
                                 f"workers={workers}", capfd)
        assert status == 1 and "Traceback" not in err, err
        lines[workers] = err.strip().splitlines()[-1]
        assert not (out / "metrics.json").exists()
    assert lines[1] == lines[2] and "2000_000002" in lines[1], lines
