"""Merge a LoRA adapter into its base model (peft), for serving without LoRA support or for the next
curriculum stage's base. The output directory gets the merged weights (safetensors) and the tokenizer."""

from __future__ import annotations

import json
from pathlib import Path


class MergeError(ValueError):
    """The adapter or base model cannot be read, or the output cannot be written."""


def adapter_base(adapter: str | Path) -> str | None:
    """The base model an adapter was trained on (adapter_config.json), if it says."""
    path = Path(adapter) / "adapter_config.json"
    if not path.is_file():
        raise MergeError(f"{adapter} is not a LoRA adapter directory (no adapter_config.json)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise MergeError(f"{path}: not JSON ({e.msg})") from None
    base = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    if base is not None and not isinstance(base, str):
        raise MergeError(f"{path}: base_model_name_or_path must be a string, got {base!r}")
    return base


def merge_adapter(base: str, adapter: str | Path, out: str | Path, dtype: str = "auto") -> Path:
    """Load `base` (a local directory or hub name already in the local cache), apply `adapter`, merge and
    unload the LoRA layers, save to `out`. Runs on CPU; needs torch, transformers and peft."""
    adapter_base(adapter)  # a clear error for a wrong directory before loading anything
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise MergeError(f"{out} exists and is not empty")
    torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch_dtype)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out, safe_serialization=True)
    try:
        AutoTokenizer.from_pretrained(base).save_pretrained(out)
    except (OSError, ValueError):  # a base without a tokenizer (e.g. a bare test model) merges all the same
        pass
    return out
