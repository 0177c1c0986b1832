"""make_cam computes its CAMs in a pool of ``workers`` one-thread processes: the bytes of the one-thread loop."""

import json

import numpy as np

from tests.test_bad_inputs import _classifier, _run_stage
from tests.voc_fixture import make_tiny_voc


def _files(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and ".hydra" not in p.parts}


def test_the_pool_writes_the_bytes_of_the_loop(tmp_path, capfd):
    root = make_tiny_voc(tmp_path / "VOC2012", n_train=4, n_val=1)
    _classifier("ok")(root, None, tmp_path)
    runs = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        status, err = _run_stage(f"make_cam dataset=voc dataset.root={root} split=train classifier_dir="
                                 f"{tmp_path / 'classifier'} scales=[1.0,0.5] out_dir={out} "
                                 f"paths.results={tmp_path / 'results'} workers={workers}", capfd)
        assert status == 0, err
        assert "[make_cam] 4/4 images (100.0%)" in err
        runs[workers] = _files(out)
    assert runs[1] == runs[2]
    names = set(runs[1])
    assert {"keys.json", "labels/metrics.json", "highres/2000_000003.npy", "stride4/2000_000003.npy"} <= names
    keys = json.loads(runs[1]["keys.json"])
    cam = np.load(tmp_path / "w2" / "highres" / "2000_000001.npy")
    assert cam.dtype == np.float16 and cam.shape == (len(keys["2000_000001"]), 48, 64)


def test_a_missing_classifier_is_one_line_before_any_worker(tmp_path, capfd):
    root = make_tiny_voc(tmp_path / "VOC2012", n_train=2, n_val=1)
    status, err = _run_stage(f"make_cam dataset=voc dataset.root={root} split=train classifier_dir={tmp_path / 'none'} "
                             f"out_dir={tmp_path / 'out'} paths.results={tmp_path / 'results'} workers=2", capfd)
    assert status == 1 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"error: {tmp_path / 'none' / 'model.pt'}: classifier not found (run train_classifier first)"
