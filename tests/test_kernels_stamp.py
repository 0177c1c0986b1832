"""The kernel build's stamps (``sources.sha256``, the Snakemake ``--stamp`` list) are written atomically: a build
killed while writing one leaves no partial stamp, so the next run rebuilds instead of trusting half a file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import kernels.build as kb


@pytest.fixture
def fake_build(tmp_path, monkeypatch):
    """``kernels.build.build`` into ``tmp_path`` with the compiler replaced by a stub that writes the library."""
    monkeypatch.setattr(kb, "BUILD_ROOT", tmp_path / "_build")
    calls = []

    def compile_stub(command, **kwargs):
        calls.append(command)
        kb.library_path("cpu").write_bytes(b"\x7fELF stub")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(kb.subprocess, "run", compile_stub)
    return calls


def _killed_during_write(monkeypatch, name: str = ""):
    """Kill the process half-way through the next write of a file whose name contains ``name``."""
    real = Path.write_text

    def half_then_killed(self, text, *args, **kwargs):
        if name not in self.name:
            return real(self, text, *args, **kwargs)
        real(self, text[: len(text) // 2], *args, **kwargs)
        raise KeyboardInterrupt  # the process dies in the middle of the write

    monkeypatch.setattr(Path, "write_text", half_then_killed)


def test_sources_stamp_is_never_left_half_written(fake_build, monkeypatch):
    stamp = kb.library_path("cpu").parent / "sources.sha256"
    _killed_during_write(monkeypatch, "sources.sha256")
    with pytest.raises(KeyboardInterrupt):
        kb.build("cpu")
    assert not stamp.exists()
    assert not [p.name for p in stamp.parent.iterdir() if "sources.sha256" in p.name]  # no temporary left
    monkeypatch.undo()
    monkeypatch.setattr(kb, "BUILD_ROOT", stamp.parent.parent)
    monkeypatch.setattr(kb.subprocess, "run", lambda command, **kw: subprocess.CompletedProcess(command, 0, "", ""))
    kb.build("cpu")  # the rerun completes and the stamp is whole
    assert stamp.read_text() == kb.sources_digest(False) + "\n"


def test_a_whole_stamp_means_no_rebuild(fake_build):
    kb.build("cpu")
    kb.build("cpu")
    assert len(fake_build) == 1


def test_snakemake_stamp_written_atomically(fake_build, tmp_path, monkeypatch):
    out = tmp_path / "stamp" / "kernels.txt"
    out.parent.mkdir()
    out.write_text("previous build\n")
    kb.build("cpu")  # built already: main() only writes the list
    _killed_during_write(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        kb.main(["--variant", "cpu", "--stamp", str(out)])
    assert out.read_text() == "previous build\n" and sorted(p.name for p in out.parent.iterdir()) == ["kernels.txt"]


def test_unity_source_includes_every_cpp_file_and_is_never_half_written(fake_build, monkeypatch):
    build_dir = kb.library_path("cpu").parent
    build_dir.mkdir(parents=True)
    _killed_during_write(monkeypatch, "unity.cpp")
    with pytest.raises(KeyboardInterrupt):
        kb.build("cpu")
    assert not [p.name for p in build_dir.iterdir() if "unity.cpp" in p.name]  # no partial file, no temporary
    monkeypatch.undo()
    monkeypatch.setattr(kb, "BUILD_ROOT", build_dir.parent)
    unity = kb.write_unity_source(build_dir)
    included = [line.split('"')[1] for line in unity.read_text().splitlines() if line.startswith("#include")]
    assert included == [str(p) for p in sorted(kb.CSRC.glob("*.cpp"))] and len(included) >= 7
    mtime = unity.stat().st_mtime_ns
    kb.write_unity_source(build_dir)
    assert unity.stat().st_mtime_ns == mtime  # unchanged text, untouched file: ninja does not rebuild
