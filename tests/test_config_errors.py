"""Config composition errors: one line, but with their cause (the message, the file and line, the key)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

import wsss.config as config
from wsss.config import REPO_ROOT, compose
from wsss.errors import WsssError


@pytest.fixture
def conf_copy(tmp_path, monkeypatch):
    """A copy of ``conf/`` that compose() reads instead (so a test can break a file of it)."""
    copy = tmp_path / "conf"
    shutil.copytree(config.CONF_DIR, copy)
    monkeypatch.setattr(config, "CONF_DIR", copy)
    return copy


def _error(stage: str, overrides: list[str]) -> str:
    with pytest.raises(WsssError) as info:
        compose(stage, overrides)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_malformed_yaml_names_the_file_line_and_problem(conf_copy):
    (conf_copy / "dataset" / "broken.yaml").write_text("name: broken\nroot: [unclosed\n")
    message = _error("check_dataset", ["dataset=broken"])
    assert message.startswith("config check_dataset: malformed YAML: ")
    assert f"{conf_copy / 'dataset' / 'broken.yaml'}: line 3, column 1: expected ',' or ']'" in message


def test_malformed_stage_yaml_names_the_file(conf_copy):
    path = conf_copy / "refine_crf.yaml"
    path.write_text(path.read_text() + "\nthis: is: not: yaml\n")
    message = _error("refine_crf", [])
    assert f"malformed YAML: {path}: line" in message and "mapping values are not allowed here" in message


def test_wrong_type_names_the_key_and_the_cause():
    message = _error("train_classifier", ["train.epochs=abc"])
    assert "override train.epochs=abc: Value 'abc' of type 'str' could not be converted to Integer" in message
    assert "$VALUE" not in message  # no unformatted OmegaConf templates


def test_unknown_key_names_it_and_the_schema():
    message = _error("train_classifier", ["bogus_key=1"])
    assert message == "config train_classifier: Could not override 'bogus_key': Key 'bogus_key' not in 'TrainClassifierConfig'"


def test_unknown_group_option_lists_the_valid_ones():
    message = _error("check_dataset", ["dataset=nope"])
    assert "Could not find 'dataset/nope' (available: coco, folder, minicoco, minivoc, voc)" in message


def test_an_unexpected_exception_keeps_its_type_and_message(monkeypatch):
    import hydra

    def fails(*args, **kwargs):
        raise KeyError("defaults")

    monkeypatch.setattr(hydra, "compose", fails)
    assert _error("train_classifier", []) == "config train_classifier: KeyError: 'defaults'"


@pytest.mark.parametrize("override, expected", [
    ("bogus_key=1", "Key 'bogus_key' not in 'CheckDatasetConfig'"),
    ("seed=abc", "override seed=abc: Value 'abc' of type 'str' could not be converted to Integer"),
    ("dataset=nope", "Could not find 'dataset/nope' (available:"),
])
def test_stage_command_line_errors_are_one_line(override, expected, tmp_path):
    """Hydra itself reports these in several lines (and a bad YAML file with a traceback)."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-m", "stages.check_dataset", override, f"out_dir={tmp_path / 'out'}"],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: config check_dataset: ") and expected in lines[0], lines
    assert not (tmp_path / "out").exists()  # nothing written
