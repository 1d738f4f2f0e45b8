"""`pyrag-dsl doctor`: is this machine ready to answer? One row per check, with the command that fixes a
failure. Exit 1 when the default path (the configured or embedded LLM, and the retriever) cannot answer."""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .common import EXIT_OK, settings_from_args
from .safe_text import plain

if TYPE_CHECKING:
    from ..config.settings import LlamaSettings, Settings

EXIT_NOT_READY = 1
OPTIONAL_EXTRAS = ("bm25", "dense", "eval", "rl", "model-1-5b")  # missing: a feature off, not a broken default


@dataclass
class Check:
    name: str
    status: str  # ok | fail | warn | info
    result: str
    fix: str = ""
    blocking: bool = False  # a failure that stops the default path from answering


def _python_and_pip() -> Iterator[Check]:
    ok = sys.version_info >= (3, 10)
    yield Check(
        "Python",
        "ok" if ok else "fail",
        f"{platform.python_version()} ({sys.executable})",
        "" if ok else "install Python 3.10 or newer",
        blocking=not ok,
    )
    try:
        pip = metadata.version("pip")
    except metadata.PackageNotFoundError:
        pip = "not installed"
    yield Check("pip", "info", pip)


def _requirement_name(req: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", req, maxsplit=1)[0]


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
        return True
    except metadata.PackageNotFoundError:
        return False


def extras_status() -> dict[str, list[str]]:
    """Each extra of pyrag-dsl -> its requirements that are not installed."""
    missing: dict[str, list[str]] = {}
    for req in metadata.requires("pyrag-dsl") or []:
        m = re.search(r"""extra\s*==\s*["']([^"']+)["']""", req)
        if not m or m.group(1) in ("all", "test", "bench", "vllm", "verl", "ray"):
            continue
        names = missing.setdefault(m.group(1), [])
        name = _requirement_name(req)
        if name != "pyrag-dsl" and not _installed(name):
            names.append(name)
    return missing


def _extras() -> Iterator[Check]:
    for extra, absent in extras_status().items():
        if not absent:
            yield Check(f"extra [{extra}]", "ok", "installed")
            continue
        blocking = extra in ("llm", "model-0-5b", "tantivy")
        yield Check(
            f"extra [{extra}]",
            "warn" if extra in OPTIONAL_EXTRAS else "fail",
            f"missing: {', '.join(absent[:4])}{' ...' if len(absent) > 4 else ''}",
            f'pip install "pyrag-dsl[{extra}]" (from a checkout: pip install -e ".[{extra}]")',
            blocking=blocking,
        )


def _models(default: str) -> Iterator[Check]:
    from ..agents.models import MODELS, describe

    for spec in MODELS.values():
        row = describe(spec)
        name = f"model {spec.name}" + (" (default)" if spec.name == default else "")
        if not row["installed"]:
            yield Check(
                name,
                "fail" if spec.name == default else "warn",
                "not installed",
                str(row["install"]),
                blocking=spec.name == default,
            )
        else:
            where = (
                "installed"
                if not spec.assembled
                else "assembled and verified"
                if row["cached"]
                else "installed (joined and verified on first use)"
            )
            yield Check(name, "ok", where)


def _cpu() -> Iterator[Check]:
    from ..agents.cpu import FEATURES, cpu_flags, cpu_model, probe_amx

    flags = cpu_flags()
    has = [f for f in FEATURES if f in flags]
    yield Check("CPU", "info", f"{cpu_model()}; {', '.join(has) or 'none of ' + ', '.join(FEATURES)}")
    if "amx_tile" in flags:
        probe = probe_amx()
        if probe.usable:
            yield Check("AMX", "ok", "advertised and usable (XCR0 tile state on, LDTILECFG runs)")
        else:
            why = (
                "the OS has not enabled tile state (XCR0 bits 17-18)"
                if probe.os_enabled is False
                else f"LDTILECFG faulted ({probe.signal})"
                if probe.signal
                else "not granted by the kernel"
            )
            yield Check(
                "AMX",
                "warn",
                f"advertised but not usable: {why}; a llama.cpp with AMX kernels crashes here",
                "build llama.cpp without AMX (see the fix of the llama.cpp row if it fails)",
            )


def _llama(model: str | None, settings: LlamaSettings, quick: bool) -> Iterator[Check]:
    from ..agents.cpu import REBUILD_LLAMA

    try:
        version = metadata.version("llama-cpp-python")
    except metadata.PackageNotFoundError:
        yield Check(
            "llama.cpp",
            "fail",
            "llama-cpp-python is not installed",
            'pip install "pyrag-dsl[llm]" (build flags: see README, Install notes)',
            blocking=True,
        )
        return
    if quick:
        yield Check("llama.cpp", "info", f"llama-cpp-python {version} (--quick: no completion tried)")
        return
    yield completion_check(model, settings, version, REBUILD_LLAMA)


SPEED_PROMPT = "Count from one to forty in words, separated by commas. " * 8


def measure_speed(base_url: str, model: str, decode_tokens: int = 32, nonce: int = 0) -> tuple[float, float]:
    """(prompt, decode) tokens/s of a running OpenAI-compatible server: a one-token completion times the
    prompt's evaluation (`nonce` starts the prompt, so that no earlier prompt's cache is reused); a streamed
    one times the gaps between tokens (pure generation)."""
    import httpx

    body = {
        "model": model,
        "max_tokens": 1,
        "temperature": 0,
        "messages": [{"role": "user", "content": f"Round {nonce}. {SPEED_PROMPT}"}],
    }
    t = time.perf_counter()
    r = httpx.post(base_url + "/chat/completions", timeout=120, json=body)
    r.raise_for_status()
    prompt_tps = (r.json().get("usage") or {}).get("prompt_tokens", 0) / (time.perf_counter() - t)
    stamps = []
    with httpx.stream(
        "POST",
        base_url + "/chat/completions",
        timeout=120,
        json={**body, "max_tokens": decode_tokens + 1, "stream": True},
    ) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: {") and '"content"' in line:
                stamps.append(time.perf_counter())
    decode_tps = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 2 else 0.0
    return prompt_tps, decode_tps


def completion_check(model: str | None, llama_settings: LlamaSettings, version: str, rebuild: str) -> Check:
    """Start the embedded server and time a prompt and a short generation: prompt and decode tokens/s."""
    import httpx

    from ..agents.llm import LLMError
    from ..agents.local_server import LocalLLMServer, ServerCrashed

    try:
        with LocalLLMServer(model, settings=llama_settings, startup_timeout_s=180) as server:
            prompt_tps, decode_tps = measure_speed(server.base_url, server.alias)
            return Check(
                "llama.cpp",
                "ok",
                f"llama-cpp-python {version}, {server.model_path.name}: one-token "
                f"completion ok; prompt {prompt_tps:.0f} tokens/s, decode {decode_tps:.1f} tokens/s "
                f"({server.threads} threads)",
            )
    except ServerCrashed as e:
        return Check(
            "llama.cpp", "fail", f"the server died with {e.how} {e.when}: {e.log_tail[-200:]}", e.remedy, blocking=True
        )
    except (LLMError, httpx.HTTPError) as e:
        return Check(
            "llama.cpp",
            "fail",
            f"{type(e).__name__}: {e}",
            f"`pyrag-dsl models`; if it crashes: {rebuild}",
            blocking=True,
        )


def _index(settings: Settings) -> Iterator[Check]:
    r = settings.retriever
    if r.url:
        import httpx

        try:
            code = httpx.get(r.url.rstrip("/") + "/health", timeout=5).status_code
            yield Check(
                "retriever",
                "ok" if code == 200 else "fail",
                f"{r.url}: /health answered {code}",
                "" if code == 200 else "check RETRIEVER_URL / --retriever-url",
                blocking=code != 200,
            )
        except httpx.HTTPError as e:
            yield Check(
                "retriever",
                "fail",
                f"{r.url}: {type(e).__name__}",
                "start it: pyrag-dsl serve-retriever",
                blocking=True,
            )
        return
    if r.index:
        from ..retrievers.index_meta import META_FILE

        ok = (Path(r.index) / META_FILE).is_file()
        yield Check(
            "index", "ok" if ok else "fail", str(r.index), "" if ok else "pyrag-dsl index build ...", blocking=not ok
        )
        return
    from ..retrievers.embedded import DEFAULT_KIND, embedded_index_built

    built = embedded_index_built()
    tantivy = _installed("tantivy")
    status = "ok" if tantivy else "fail"
    yield Check(
        "embedded index",
        status,
        ("built" if built else "built on first use (a few seconds)") + f" ({DEFAULT_KIND})",
        "" if tantivy else 'pip install "pyrag-dsl[tantivy]"',
        blocking=not tantivy,
    )


def _configured_llms(settings: Settings) -> Iterator[Check]:
    from ..agents.llm import LLMClient, LLMConfig, LLMError

    fields = [settings.llm_fields(), settings.plan_llm_fields()]
    for label, f in zip(("LLM", "Plan LLM"), fields):
        if not f:
            continue
        client = LLMClient(LLMConfig(**f))
        try:
            client.check()
            yield Check(label, "ok", f"{f['base_url']} ({f['model']}) answers")
        except LLMError as e:
            yield Check(
                label,
                "fail",
                str(e),
                "start the server, or unset LLM_BASE_URL to use the embedded model",
                blocking=True,
            )
        finally:
            client.close()


def run_checks(settings: Settings, quick: bool = False) -> list[Check]:
    from ..agents.models import DEFAULT_MODEL

    checks = [*_python_and_pip(), *_extras(), *_cpu()]
    if settings.embedded_llm:
        model = settings.gguf or DEFAULT_MODEL
        checks += [*_models(model)]
        models_ok = not any(c.blocking and c.status == "fail" for c in checks if c.name.startswith("model "))
        if models_ok:
            checks += _llama(model, settings.llama, quick)
    else:
        checks += _configured_llms(settings)
    checks += _index(settings)
    return checks


def cmd_doctor(args: argparse.Namespace, console: Console) -> int:

    checks = run_checks(settings_from_args(args), quick=args.quick)
    ready = not any(c.blocking and c.status == "fail" for c in checks)
    if args.json:
        print(json.dumps({"ready": ready, "checks": [asdict(c) for c in checks]}, indent=2))
        return EXIT_OK if ready else EXIT_NOT_READY
    table = Table(title="pyrag-dsl doctor", show_lines=False)
    for col in ("check", "", "result", "fix"):
        table.add_column(col, overflow="fold")
    mark = {
        "ok": "[green]ok[/green]",
        "fail": "[red]FAIL[/red]",
        "warn": "[yellow]warn[/yellow]",
        "info": "[dim]-[/dim]",
    }
    for c in checks:
        table.add_row(Text(plain(c.name)), mark[c.status], Text(plain(c.result)), Text(plain(c.fix)))
    console.print(table)
    console.print(
        "[green]Ready: the default path can answer.[/green]"
        if ready
        else "[red]Not ready: fix the FAIL rows above (their commands), then run pyrag-dsl doctor again.[/red]"
    )
    return EXIT_OK if ready else EXIT_NOT_READY


def add_doctor_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], add_llm_flags: Callable[[argparse.ArgumentParser], None]
) -> None:
    p = sub.add_parser(
        "doctor",
        help="check that this machine can answer: Python, extras, models, llama.cpp, CPU, index, servers",
        description="One row per check with the command that fixes a failure: "
        "Python and pip, the extras installed, each embedded model, llama.cpp with a real completion "
        "(prompt and decode tokens/s), the CPU features llama.cpp uses (AVX2, AVX-512, AMX and "
        "whether the OS enables it), the embedded index, and any configured LLM or retriever URL. "
        "Exit 0 when ready, 1 when the default path cannot answer.",
    )
    p.add_argument("--json", action="store_true", help="print the checks as JSON (ready: true/false)")
    p.add_argument("--quick", action="store_true", help="do not start the embedded llama.cpp server")
    add_llm_flags(p)
    p.set_defaults(func=cmd_doctor)
