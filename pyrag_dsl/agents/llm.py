"""One client for any OpenAI-compatible server (vLLM, llama.cpp's server, ...), over the `openai` package."""

from __future__ import annotations

import contextvars
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, cast

from ..config import defaults as D
from ..config.deadline import DeadlineExceeded
from ..config.retry import EndpointUnavailable, RetriesExhausted, RetryPolicy, TransientError, breaker_for

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

CHECK_TIMEOUT_S = 10.0
# Hears each chat call made in this context: observer(client, messages, on_usage, chat) returns chat(on_usage),
# the reply (pyrag_dsl.pipeline.events.LLMCalls records a question's LLM calls with it; unset: nothing)
UsageListener = Callable[[Any], object]  # gets the server's token usage (openai's CompletionUsage)
TextListener = Callable[[str], object]  # gets a streamed reply's text so far


class ChatObserver(Protocol):
    def __call__(
        self,
        client: LLMClient,
        messages: list[dict[str, str]],
        on_usage: UsageListener | None,
        chat: Callable[[UsageListener | None], str],
    ) -> str: ...


class ChatLLM(Protocol):
    """What the agents ask of an LLM client: LLMClient, or a view of one (pipeline.batch.MeteredLLM)."""

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int | None = None,
        extra_body: dict[str, Any] | None = None,
        stop: list[str] | None = None,
        on_usage: UsageListener | None = None,
        on_text: TextListener | None = None,
    ) -> str: ...

    def grammar_body(self, lark: str, gbnf: str) -> dict[str, Any]: ...


class PipelineLLM(ChatLLM, Protocol):
    """What the pipeline asks of an LLM client besides chat: its request count and the kind of server."""

    calls: int

    def server_kind(self) -> str: ...


CHAT_OBSERVER: contextvars.ContextVar[ChatObserver | None] = contextvars.ContextVar(
    "pyrag_dsl_chat_observer", default=None
)
_THINK = re.compile(r"\s*<think>.*?(?:</think>|\Z)", re.S | re.I)  # a leading think block (or one still open)


class LLMError(Exception):
    """The LLM server failed, timed out or answered garbage. Says which server and why."""

    def __init__(self, where: str, cause: str) -> None:
        super().__init__(f"{where}: {cause}")
        self.where = where
        self.cause = cause


class _ChatRequest(TypedDict):
    """The fields of one chat request, the same for a streamed and a plain call."""

    model: str
    messages: list[ChatCompletionMessageParam]
    temperature: float
    max_tokens: int
    stop: list[str] | None
    extra_body: dict[str, Any] | None
    timeout: float


@dataclass(frozen=True)
class LLMConfig:
    """Where and how to call one model. `grammar`: auto (ask the server), gbnf (llama.cpp), lark (vLLM), off."""

    model: str = "local"
    base_url: str = "http://127.0.0.1:8337/v1"
    api_key: str = "EMPTY"
    timeout_s: float = D.LLM_TIMEOUT_S
    retries: int = D.LLM_RETRIES
    backoff_s: float = D.LLM_BACKOFF_S
    temperature: float = 0.0
    max_tokens: int = D.LLM_MAX_TOKENS
    enable_thinking: bool = False
    grammar: str = "auto"
    extra_body: dict[str, Any] = field(default_factory=dict)

    def with_(self, **kw: Any) -> "LLMConfig":
        return replace(self, **kw)


def strip_thinking(text: str) -> str:
    """The reply without its leading <think> block (all of it while that block is still open); a <think>
    later in the text is part of the reply (a question may mention one)."""
    m = _THINK.match(text)
    return (text[m.end() :] if m else text).strip()


class LLMClient:
    """Chat completions with timeouts, <think> stripping and optional grammar; retries, the question's deadline
    and failing fast on a server that keeps failing come from the shared policy (pyrag_dsl.config.retry)."""

    def __init__(self, config: LLMConfig) -> None:
        from openai import DefaultHttpxClient, OpenAI

        from ..config.wallclock import wall_clock_hooks

        self.config = config
        # each request (a streamed one too) bounded on the wall clock: httpx alone bounds each wait for data
        self._client = OpenAI(
            base_url=config.base_url,
            api_key=config.api_key or "EMPTY",
            timeout=config.timeout_s,
            max_retries=0,
            http_client=DefaultHttpxClient(event_hooks=wall_clock_hooks()),
        )
        self.calls = 0
        self.failures = 0
        self._lock = threading.Lock()
        self._server_kind: str | None = None
        self.retry = RetryPolicy(config.retries, config.backoff_s)
        self.breaker = breaker_for(config.base_url)  # shared by every client of this server
        # raises the server's own error (e.g. local_server.ServerCrashed) when a failed request finds it dead
        self.health: Callable[[], object] | None = None

    @property
    def where(self) -> str:
        return f"{self.config.base_url} ({self.config.model})"

    def server_kind(self) -> str:
        """'vllm', 'llama.cpp' or 'other', from the server's /models answer (asked once)."""
        if self._server_kind is None:
            kind = "other"
            try:
                models = self._client.models.list(timeout=self.check_timeout_s)
                owners = {getattr(m, "owned_by", "") or "" for m in models.data}
                if "vllm" in owners:
                    kind = "vllm"
                elif owners & {"me", "llamacpp", "llama.cpp"}:
                    kind = "llama.cpp"
            except Exception:  # noqa: BLE001 - the kind is a hint; a dead server fails on the real call
                pass
            self._server_kind = kind
        return self._server_kind

    def check(self) -> None:
        """Fail fast with an LLMError when the server cannot be reached or does not answer."""
        try:
            self._client.models.list(timeout=self.check_timeout_s)
        except Exception as e:  # noqa: BLE001
            raise LLMError(self.where, _describe(e, self.check_timeout_s)) from None

    @property
    def check_timeout_s(self) -> float:
        """Seconds for the start-up check and the /models question (a live server answers at once): the request
        timeout, at least 2 s and at most 10 s."""
        return min(max(self.config.timeout_s, 2.0), CHECK_TIMEOUT_S)

    def grammar_body(self, lark: str, gbnf: str) -> dict[str, Any]:
        """The request fields that constrain decoding to a grammar, for this server (empty if unsupported)."""
        mode = self.config.grammar
        if mode == "auto":
            mode = {"vllm": "lark", "llama.cpp": "gbnf"}.get(self.server_kind(), "off")
        if mode == "gbnf":
            return {"grammar": gbnf}
        if mode == "lark":
            return {"guided_grammar": lark, "structured_outputs": {"grammar": lark}}
        return {}

    def _stream_usage(self) -> dict[str, Any]:
        """Ask for the token usage at the end of a streamed reply where the server is known to send it (vLLM)."""
        return {"stream_options": {"include_usage": True}} if self._server_kind == "vllm" else {}

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int | None = None,
        extra_body: dict[str, Any] | None = None,
        stop: list[str] | None = None,
        on_usage: UsageListener | None = None,
        on_text: TextListener | None = None,
    ) -> str:
        """One chat completion; `on_usage(usage)` gets the server's token usage when it reports one.
        With `on_text`, the reply is streamed and `on_text(text_so_far)` is called as it grows (a retry
        starts the text again from empty); its exceptions are ignored."""
        observer = CHAT_OBSERVER.get()
        if observer is not None:  # the question records its LLM calls (pipeline.events.LLMCalls)
            return observer(
                self,
                messages,
                on_usage,
                lambda hear: self.chat(
                    messages, max_tokens=max_tokens, extra_body=extra_body, stop=stop, on_usage=hear, on_text=on_text
                ),
            )
        body = {**self.config.extra_body, **(extra_body or {})}
        if self.config.enable_thinking is False:
            body.setdefault("chat_template_kwargs", {"enable_thinking": False})

        def send(timeout: float) -> str:
            request: _ChatRequest = {
                "model": self.config.model,
                # the agents' messages are {"role", "content"} dicts, the shape the server expects
                "messages": cast("list[ChatCompletionMessageParam]", messages),
                "temperature": self.config.temperature,
                "max_tokens": max_tokens or self.config.max_tokens,
                "stop": stop,
                "extra_body": body or None,
                "timeout": timeout,
            }
            return self._send(request, on_text, on_usage)

        try:  # one retry policy for all clients: backoff, the question's deadline, fail fast (config.retry)
            return self.retry.call(send, timeout_s=self.config.timeout_s, breaker=self.breaker)
        except (RetriesExhausted, EndpointUnavailable, DeadlineExceeded) as e:
            raise LLMError(self.where, str(e)) from None

    def _send(self, request: _ChatRequest, on_text: TextListener | None, on_usage: UsageListener | None) -> str:
        """One attempt: the request sent (streamed with `on_text`), its failure typed (TransientError to retry,
        LLMError to give up), its reply without the thinking."""
        with self._lock:
            self.calls += 1
        timeout = request["timeout"]
        try:
            if on_text is not None:
                create = self._client.chat.completions.create
                return _streamed(create(**request, stream=True, **self._stream_usage()), on_text, on_usage)
            response = self._client.chat.completions.create(**request)
        except TransientError:
            with self._lock:
                self.failures += 1
            raise
        except Exception as e:  # noqa: BLE001 - openai raises many types; all become LLMError
            with self._lock:
                self.failures += 1
            if self.health is not None:
                self.health()
            if _retryable(e):
                raise TransientError(_describe(e, timeout)) from None
            raise LLMError(self.where, _describe(e, timeout)) from None
        content = _message_content(response)
        if content is None:
            with self._lock:
                self.failures += 1
            raise TransientError("the answer has no message content")
        if on_usage is not None and getattr(response, "usage", None) is not None:
            on_usage(response.usage)
        return strip_thinking(content)

    def close(self) -> None:
        self._client.close()


def _message_content(response: Any) -> str | None:
    """The reply's text, or None where the server's answer has none (a server may send any shape)."""
    try:
        content = response.choices[0].message.content
    except (AttributeError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else None


def _streamed(stream: Iterable[Any], on_text: TextListener, on_usage: UsageListener | None) -> str:
    """Read a streamed completion, telling `on_text` the text so far; the whole reply, thinking stripped."""
    parts: list[str] = []
    usage = None
    for chunk in stream:
        usage = getattr(chunk, "usage", None) or usage
        try:
            delta = chunk.choices[0].delta.content if chunk.choices else None
        except (AttributeError, IndexError, TypeError):
            delta = None
        if isinstance(delta, str) and delta:
            parts.append(delta)
            try:
                on_text("".join(parts))
            except Exception:  # noqa: BLE001 - a listener must never break the call
                pass
    if not parts:
        raise TransientError("the streamed answer has no content")
    if on_usage is not None and usage is not None:
        on_usage(usage)
    return strip_thinking("".join(parts))


def _describe(e: Exception, timeout: float | None = None) -> str:
    name = type(e).__name__
    if "Timeout" in name:
        return f"timed out after {timeout:g} s ({name})" if timeout else f"timed out ({name})"
    if "Connection" in name:
        return f"cannot connect ({name})"
    status = getattr(e, "status_code", None)
    text = str(e).replace("\n", " ")[:300]
    return f"{name} {status}: {text}" if status else f"{name}: {text}"


def _retryable(e: Exception) -> bool:
    status: int | None = getattr(e, "status_code", None)  # openai's APIStatusError carries the HTTP status
    if status is not None:
        return status >= 500 or status == 429
    return True  # connection errors and timeouts
