"""The run configuration a trace header records, and the PipelineConfig rebuilt from it for replay:
top-k values, policy, mode, sentinels, the engine's Limits and the language's enabled node kinds."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..grammar import DEFAULT_LANGUAGE, Language, Limits
from ..grammar.extensions import TEXT_CONCAT

# Node kinds a recorded language may enable, by name.
KNOWN_NODE_KINDS = {kind.name: kind for kind in (TEXT_CONCAT,)}


class RecordedConfigError(ValueError):
    """The recorded configuration cannot be rebuilt by this version (unknown limit, node kind or tool)."""


def limits_to_json(limits: Limits) -> dict[str, Any]:
    return dataclasses.asdict(limits)


def limits_from_json(data: dict[str, Any] | None) -> Limits:
    """Limits from a header; fields a header lacks keep their defaults (older traces)."""
    if not data:
        return Limits()
    known = {f.name for f in dataclasses.fields(Limits)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise RecordedConfigError(f"the trace records unknown limit(s) {', '.join(unknown)}")
    try:
        return Limits(**data)
    except (TypeError, ValueError) as e:
        raise RecordedConfigError(f"the trace records bad limits: {e}") from None


def language_to_json(language: Language) -> dict[str, Any]:
    return {"tools": list(language.tools), "nodes": [kind.name for kind in language.nodes.values()]}


def language_from_json(data: dict[str, Any] | None) -> Language:
    """The default language plus the recorded node kinds; a tool outside the default language cannot be
    rebuilt from a name, so a trace that used one is refused."""
    if not data:
        return DEFAULT_LANGUAGE
    lang = DEFAULT_LANGUAGE
    for name in data.get("nodes", []):
        if name not in KNOWN_NODE_KINDS:
            raise RecordedConfigError(f"the trace was recorded with node kind {name!r}, which this version does "
                                      f"not know (known: {', '.join(KNOWN_NODE_KINDS)})")
        lang = lang.with_node(KNOWN_NODE_KINDS[name])
    extra = [t for t in data.get("tools", []) if t not in lang.tools]
    if extra:
        raise RecordedConfigError(f"the trace used tool(s) {', '.join(extra)} that are not built in; replay it "
                                  "from Python with replay(..., language=...)")
    return lang


def to_json(cfg: Any) -> dict[str, Any]:
    """The `limits` and `language` entries of a PipelineConfig's recorded settings."""
    return {"limits": limits_to_json(cfg.limits), "language": language_to_json(cfg.language)}


def config_from_header(header: dict[str, Any], **overrides: Any):
    """The PipelineConfig a trace was recorded with (settings, limits, language), then `overrides`."""
    from .runner import PipelineConfig

    s = header.get("settings") or {}
    try:
        cfg = PipelineConfig(topk=int(s.get("topk", 5)), boosted_topk=int(s.get("boosted_topk", 10)),
                             policy=s.get("policy", "incremental"), parallel=bool(s.get("parallel")),
                             sentinels=tuple(s["sentinels"]) if "sentinels" in s else None,
                             limits=limits_from_json(s.get("limits")), language=language_from_json(s.get("language")))
        return dataclasses.replace(cfg, **overrides) if overrides else cfg
    except (TypeError, ValueError) as e:
        if isinstance(e, RecordedConfigError):
            raise
        raise RecordedConfigError(f"the trace records bad settings: {e}") from None


__all__ = ["KNOWN_NODE_KINDS", "RecordedConfigError", "config_from_header", "language_from_json",
           "language_to_json", "limits_from_json", "limits_to_json"]
