"""The PipelineConfig rebuilt for replay from the run configuration a trace header records
(PipelineConfig.settings()): top-k values, policy, mode, sentinels, the engine's Limits and the language's
enabled node kinds; a key an older header lacks takes its default (config.defaults).

A header is input like any file: every entry is checked for its type, and a bad one is a
RecordedConfigError naming its key (`settings.topk`). Recorded limits looser than the defaults are
tightened to them (`bounded_limits`): a trace cannot switch the engine's bounds off."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from ..config import MAX_TOPK, ConfigError, check_topk
from ..config import defaults as D
from ..config.errors import show
from ..grammar import DEFAULT_LANGUAGE, Language, Limits
from ..grammar.extensions import TEXT_CONCAT
from .config import POLICIES, PipelineConfig

# Node kinds a recorded language may enable, by name.
KNOWN_NODE_KINDS = {kind.name: kind for kind in (TEXT_CONCAT,)}


class RecordedConfigError(ValueError):
    """The recorded configuration cannot be rebuilt by this version (unknown limit, node kind or tool)."""


def _table(data: Any, key: str) -> dict[str, Any]:
    """`data` when it is a JSON object (None: empty); else a RecordedConfigError naming `key`."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RecordedConfigError(f"{key} must be an object, got {show(data)}")
    return data


def _names(data: Any, key: str) -> list[str]:
    """`data` when it is a list of strings (None: empty); else a RecordedConfigError naming `key`."""
    if data is None:
        return []
    if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
        raise RecordedConfigError(f"{key} must be a list of strings, got {show(data)}")
    return data


def limits_from_json(data: dict[str, Any] | None) -> Limits:
    """Limits from a header as recorded; fields a header lacks keep their defaults (older traces)."""
    data = _table(data, "settings.limits")
    if not data:
        return Limits()
    known = {f.name for f in dataclasses.fields(Limits)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise RecordedConfigError(f"the trace records unknown limit(s) {show(', '.join(unknown))}")
    try:
        return Limits(**data)
    except (TypeError, ValueError) as e:
        raise RecordedConfigError(f"the trace records bad limits: {show(str(e), 200)}") from None


def bounded_limits(recorded: Limits, defaults: Limits | None = None) -> Limits:
    """`recorded`, each limit tightened to the default where the recording's is looser (a timeout of None,
    no limit, counts as looser than any number)."""
    defaults = defaults or Limits()
    tighter = {}
    for f in dataclasses.fields(Limits):
        mine, default = getattr(recorded, f.name), getattr(defaults, f.name)
        loose = math.inf if mine is None else mine
        tighter[f.name] = mine if default is not None and loose <= default else default
    return Limits(**tighter)


def language_from_json(data: dict[str, Any] | None) -> Language:
    """The default language plus the recorded node kinds; a tool outside the default language cannot be
    rebuilt from a name, so a trace that used one is refused."""
    data = _table(data, "settings.language")
    if not data:
        return DEFAULT_LANGUAGE
    lang = DEFAULT_LANGUAGE
    for name in _names(data.get("nodes"), "settings.language.nodes"):
        if name not in KNOWN_NODE_KINDS:
            raise RecordedConfigError(
                f"the trace was recorded with node kind {show(name)}, which this version does "
                f"not know (known: {', '.join(KNOWN_NODE_KINDS)})"
            )
        lang = lang.with_node(KNOWN_NODE_KINDS[name])
    extra = [t for t in _names(data.get("tools"), "settings.language.tools") if t not in lang.tools]
    if extra:
        raise RecordedConfigError(
            f"the trace used tool(s) {show(', '.join(extra))} that are not built in; replay it "
            "from Python with replay(..., language=...)"
        )
    return lang


def _topk(value: Any, key: str) -> int:
    try:
        return check_topk(value, key)
    except ConfigError:
        raise RecordedConfigError(f"{key} must be an integer from 1 to {MAX_TOPK}, got {show(value)}") from None


def config_from_header(header: dict[str, Any], *, limits: Limits | None = None, **overrides: Any) -> PipelineConfig:
    """The PipelineConfig a trace was recorded with (settings, language, and its limits tightened to the
    defaults by bounded_limits unless `limits` is given), then `overrides`. A RecordedConfigError names the
    bad key."""
    s = _table(header.get("settings"), "settings")
    policy = s.get("policy", D.POLICY)
    if policy not in POLICIES:
        raise RecordedConfigError(f"settings.policy must be one of {', '.join(POLICIES)}, got {show(policy)}")
    parallel = s.get("parallel") or False
    if not isinstance(parallel, bool):
        raise RecordedConfigError(f"settings.parallel must be true or false, got {show(parallel)}")
    sentinels = None if s.get("sentinels") is None else _names(s["sentinels"], "settings.sentinels")
    recorded = limits_from_json(s.get("limits"))
    cfg = PipelineConfig(
        topk=_topk(s.get("topk", D.TOPK), "settings.topk"),
        boosted_topk=_topk(s.get("boosted_topk", D.BOOSTED_TOPK), "settings.boosted_topk"),
        policy=policy,
        parallel=parallel,
        sentinels=None if sentinels is None else tuple(sentinels),
        limits=limits if limits is not None else bounded_limits(recorded),
        language=language_from_json(s.get("language")),
    )
    try:
        return dataclasses.replace(cfg, **overrides) if overrides else cfg
    except (TypeError, ValueError) as e:
        raise RecordedConfigError(f"bad override: {show(str(e), 200)}") from None


__all__ = [
    "KNOWN_NODE_KINDS",
    "RecordedConfigError",
    "bounded_limits",
    "config_from_header",
    "language_from_json",
    "limits_from_json",
]
