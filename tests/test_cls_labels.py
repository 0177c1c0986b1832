"""PSA (str keys) and IRN (int keys) cls_labels.npy import to the same labels."""

from __future__ import annotations

import numpy as np
import pytest

from wsss.data.cls_labels import load_cls_labels, save_cls_labels
from wsss.errors import WsssError


def vector(*classes):
    v = np.zeros(20, np.float32)
    v[[c - 1 for c in classes]] = 1
    return v


def test_psa_and_irn_styles_round_trip(tmp_path):
    labels = {"2007_000032": vector(1, 15), "2011_003353": vector(15)}
    save_cls_labels(tmp_path / "psa.npy", labels, style="psa")
    save_cls_labels(tmp_path / "irn.npy", labels, style="irn")
    raw = np.load(tmp_path / "irn.npy", allow_pickle=True).item()
    assert set(raw) == {2007000032, 2011003353}
    assert set(np.load(tmp_path / "psa.npy", allow_pickle=True).item()) == set(labels)
    for name in ("psa.npy", "irn.npy"):
        loaded = load_cls_labels(tmp_path / name)
        assert set(loaded) == set(labels)
        for key in labels:
            assert loaded[key].dtype == np.float32 and loaded[key].tolist() == labels[key].tolist()


def test_files_written_by_np_save_of_a_dict(tmp_path):
    np.save(tmp_path / "irn.npy", {np.int32(2007000032): vector(1)})
    assert load_cls_labels(tmp_path / "irn.npy")["2007_000032"].tolist() == vector(1).tolist()


@pytest.mark.parametrize(
    "content, message",
    [
        (np.zeros(3), r"expected a pickled dict"),
        ({"a": np.zeros(21)}, r"a: label vector has 21 entries, expected 20"),
        ({"a": np.full(20, 0.5)}, r"a: label vector values must be 0 or 1"),
        ({"2007_000032": vector(1), 2007000032: vector(1)}, r"id '2007_000032' appears twice"),
        ({1.5: vector(1)}, r"key 1\.5 is neither"),
    ],
)
def test_bad_cls_labels(tmp_path, content, message):
    np.save(tmp_path / "cls.npy", content, allow_pickle=True)
    with pytest.raises(WsssError, match=r"cls\.npy: " + message):
        load_cls_labels(tmp_path / "cls.npy")


def test_missing_and_garbage(tmp_path):
    with pytest.raises(WsssError, match=r"none\.npy: file not found"):
        load_cls_labels(tmp_path / "none.npy")
    (tmp_path / "bad.npy").write_bytes(b"garbage")
    with pytest.raises(WsssError, match=r"bad\.npy: unreadable \.npy"):
        load_cls_labels(tmp_path / "bad.npy")
