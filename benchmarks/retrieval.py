"""Retrieval benchmark, in one run: index build time, HTTP throughput (1 vs 32 queries per request),
latency, and recall@5/@10 of the supporting titles of the 300 embedded HotpotQA questions.

    python benchmarks/retrieval.py [--skip-dense] [--requests N]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from pyrag_dsl.retrievers import HttpRetriever, open_index  # noqa: E402
from pyrag_dsl.retrievers.corpus import iter_corpus  # noqa: E402
from pyrag_dsl.retrievers.embedded import QUESTIONS_FILE, embedded_corpus_path  # noqa: E402


def load_questions() -> list[dict]:
    return [json.loads(line) for line in QUESTIONS_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]


def recall(retriever, questions: list[dict], ks=(5, 10)) -> dict[int, tuple[float, float]]:
    """Per k: (mean share of supporting titles in the top k, share of questions with all of them)."""
    hits = retriever.search([q["question"] for q in questions], max(ks))
    out = {}
    for k in ks:
        shares, complete = [], 0
        for q, docs in zip(questions, hits):
            titles = {d.title for d in docs[:k]}
            gold = set(q["supporting_titles"])
            found = len(gold & titles)
            shares.append(found / len(gold))
            complete += found == len(gold)
        out[k] = (statistics.mean(shares), complete / len(questions))
    return out


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def http_throughput(url: str, queries: list[str], batch: int) -> dict:
    latencies = []
    with HttpRetriever(url, max_batch=batch) as client:
        client.search(queries[:batch], 5)  # warm the connection
        t0 = time.perf_counter()
        for i in range(0, len(queries), batch):
            s = time.perf_counter()
            client.search(queries[i : i + batch], 5)
            latencies.append(time.perf_counter() - s)
        wall = time.perf_counter() - t0
    return {
        "batch": batch,
        "qps": len(queries) / wall,
        "p50_ms": percentile(latencies, 50) * 1e3,
        "p95_ms": percentile(latencies, 95) * 1e3,
        "requests": len(latencies),
    }


@contextlib.contextmanager
def served(index_dir: Path):
    """Run `pyrag-dsl serve-retriever` on a free loopback port; yield its URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pyrag_dsl.cli",
            "serve-retriever",
            "--index",
            str(index_dir),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(url + "/health", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("retrieval server did not start: " + (proc.stderr.read() or "")[-500:])
                time.sleep(0.3)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def reference_style_throughput(url: str, queries: list[str]) -> dict:
    """As the reference client does it: requests.post with one query per request (a new connection each)."""
    import requests

    latencies = []
    t0 = time.perf_counter()
    for q in queries:
        s = time.perf_counter()
        r = requests.post(url + "/retrieve", json={"queries": [q], "topk": 5, "return_scores": True}, timeout=30)
        r.raise_for_status()
        r.json()
        latencies.append(time.perf_counter() - s)
    wall = time.perf_counter() - t0
    return {
        "batch": "1 (ref)",
        "qps": len(queries) / wall,
        "p50_ms": percentile(latencies, 50) * 1e3,
        "p95_ms": percentile(latencies, 95) * 1e3,
        "requests": len(latencies),
    }


def build_indexes(args: argparse.Namespace, corpus: Path, n_passages: int, tmp: Path) -> tuple[dict, list, list]:
    """Build each backend's index (and, unless skipped, time the build of a 4x copy of the corpus, which gives
    builds long enough to time): the builders, (label, s per 10k passages) rows, (kind, retriever) pairs."""
    from pyrag_dsl.retrievers.bm25 import build_bm25_index
    from pyrag_dsl.retrievers.tantivy_bm25 import build_tantivy_index

    big = tmp / "corpus-x4.jsonl"
    with open(big, "w", encoding="utf-8") as f:
        for copy in range(4):
            for p in iter_corpus(corpus):
                f.write(json.dumps({"id": f"{p.id}-{copy}", "contents": p.contents}) + "\n")
    builders = {
        "bm25": ("bm25 (Lucene, pyserini)", lambda c, o: build_bm25_index(c, o, threads=2)),
        "tantivy": ("tantivy (BM25, Rust)", lambda c, o: build_tantivy_index(c, o)),
    }
    rows, backends = [], []
    for kind, (label, build) in builders.items():
        if not args.skip_build_timing:
            t0 = time.perf_counter()
            build(big, tmp / f"{kind}-x4")
            rows.append((label, (time.perf_counter() - t0) / (4 * n_passages) * 10_000))
        build(corpus, tmp / kind)
        backends.append((kind, open_index(tmp / kind)))
    if not args.skip_dense:
        from pyrag_dsl.retrievers.dense import build_dense_index

        t0 = time.perf_counter()
        build_dense_index(corpus, tmp / "dense")
        rows.append(("dense (all-MiniLM-L6-v2, faiss)", (time.perf_counter() - t0) / n_passages * 10_000))
        backends.append(("dense", open_index(tmp / "dense")))
    return builders, rows, backends


def print_http(kinds: list[str], tmp: Path, queries: list[str]) -> None:
    """Throughput of each backend's server: the reference-style client, ours one query at a time, batched."""
    print(f"\nHTTP /retrieve over loopback to 'pyrag-dsl serve-retriever', topk=5, {len(queries)} queries per mode")
    print(f"  {'backend':<8} {'queries/request':>16} {'queries/s':>10} {'p50 ms/request':>15} {'p95 ms/request':>15}")
    ratios = {}
    for kind in kinds:
        with served(tmp / kind) as url:  # a separate server process, as users run it
            http_throughput(url, queries, 32)  # warm up
            ref = reference_style_throughput(url, queries)
            one = http_throughput(url, queries, 1)
            many = http_throughput(url, queries, 32)
        for r in (ref, one, many):
            print(f"  {kind:<8} {r['batch']:>16} {r['qps']:>10.1f} {r['p50_ms']:>15.2f} {r['p95_ms']:>15.2f}")
        ratios[kind] = (many["qps"] / one["qps"], many["qps"] / ref["qps"])
    print("  (1 (ref): requests.post with one query per request, a new connection each time, as the reference")
    print("   client does; 1 and 32: our pooled client)")
    print()
    for kind, (vs_pooled, vs_ref) in ratios.items():
        print(
            f"Batched (32) throughput, {kind}: {vs_pooled:.1f}x our pooled one-query client, {vs_ref:.1f}x the "
            f"reference-style client (target >= 5x): pooled {'MET' if vs_pooled >= 5 else 'NOT MET'}, "
            f"reference-style {'MET' if vs_ref >= 5 else 'NOT MET'}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-dense", action="store_true", help="skip the dense index (encoding takes about a minute)")
    ap.add_argument("--requests", type=int, default=640, help="queries sent through HTTP per mode")
    ap.add_argument(
        "--skip-build-timing",
        action="store_true",
        help="skip the timed builds of a 4x copy of the corpus (recall and HTTP throughput still run)",
    )
    args = ap.parse_args()
    corpus = embedded_corpus_path()
    n_passages = sum(1 for _ in iter_corpus(corpus))
    questions = load_questions()
    print(f"Embedded corpus: {n_passages} passages; {len(questions)} HotpotQA dev questions.\n")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        builders, rows, backends = build_indexes(args, corpus, n_passages, tmp)
        print("Index build time (s per 10k passages, 2 threads)" + (": skipped" if args.skip_build_timing else ""))
        for label, secs in rows:
            print(f"  {label:<34} {secs:8.1f}")
        print("\nRecall of supporting titles (mean share found / share of questions with both found)")
        print(f"  {'backend':<8} {'recall@5':>10} {'all@5':>8} {'recall@10':>10} {'all@10':>8}")
        for kind, retriever in backends:
            r = recall(retriever, questions)
            print(f"  {kind:<8} {r[5][0]:>10.3f} {r[5][1]:>8.3f} {r[10][0]:>10.3f} {r[10][1]:>8.3f}")
        for _, retriever in backends:
            retriever.close()
        queries = [q["question"] for q in questions]
        print_http(list(builders), tmp, (queries * (args.requests // len(queries) + 1))[: args.requests])


if __name__ == "__main__":
    main()
