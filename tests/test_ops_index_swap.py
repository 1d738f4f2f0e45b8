"""`index build --force` over a good index builds aside and swaps: a build that fails midway or is
interrupted leaves the old index opening and searching as before, and no temporary directory behind."""

import json
import signal

import pytest
from conftest import SMALL_CORPUS
from ops_helpers import cli, popen, wait_for

pytestmark = pytest.mark.slow(seconds=28)


def _siblings(index):
    return sorted(p.name for p in index.parent.iterdir() if p.name != index.name and p.name.startswith("."))


def _search(index, query="Tokyo capital"):
    r = cli("search", query, "--index", str(index), "--topk", "1")
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_failed_force_build_keeps_the_old_index(tmp_path):
    index = tmp_path / "idx"
    assert cli("index", "build", str(SMALL_CORPUS), "--kind", "tantivy", "--out", str(index)).returncode == 0
    before = (index / "pyrag-index.json").read_text()
    assert "Tokyo" in _search(index)
    bad = tmp_path / "bad.jsonl"
    good = [json.dumps({"id": f"g{i}", "contents": f'"Filler {i}"\nfiller passage number {i}'}) for i in range(3000)]
    bad.write_text("\n".join(good + ["{not json"]) + "\n")  # fails after 3,000 passages went into the writer
    for kind in ("tantivy", "bm25"):
        r = cli("index", "build", str(bad), "--kind", kind, "--out", str(index), "--force")
        assert r.returncode == 1 and "line 3001" in r.stdout + r.stderr, r.stdout + r.stderr
        assert "Tokyo" in _search(index)  # the old index still opens and searches
        assert _siblings(index) == []
    assert (index / "pyrag-index.json").read_text() == before


def test_interrupted_force_build_keeps_the_old_index(tmp_path):
    index = tmp_path / "idx"
    assert cli("index", "build", str(SMALL_CORPUS), "--kind", "tantivy", "--out", str(index)).returncode == 0
    big = tmp_path / "big.jsonl"
    with big.open("w") as f:
        for i in range(400_000):
            f.write(json.dumps({"id": f"b{i}", "contents": f'"Big {i}"\nbig corpus passage {i} about nothing'}) + "\n")
    proc = popen("index", "build", str(big), "--kind", "tantivy", "--out", str(index), "--force")
    building = wait_for(
        lambda: [p for p in tmp_path.iterdir() if p.name.startswith(".idx.building-")], 60, "the build directory", proc
    )
    wait_for(lambda: any(building[0].rglob("*")), 60, "the build to write files", proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    assert "Tokyo" in _search(index)
    assert _siblings(index) == []


def test_force_build_replaces_the_index(tmp_path):
    index = tmp_path / "idx"
    assert cli("index", "build", str(SMALL_CORPUS), "--kind", "tantivy", "--out", str(index)).returncode == 0
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"id": "z1", "contents": '"Zanzibar"\nZanzibar is an archipelago.'}) + "\n")
    r = cli("index", "build", str(other), "--kind", "tantivy", "--out", str(index), "--force")
    assert r.returncode == 0, r.stderr
    assert "Zanzibar" in _search(index, "Zanzibar archipelago") and "Tokyo" not in _search(index)
    assert _siblings(index) == []
