"""Check overrides against verl's own Hydra config without importing verl (no torch, ray or GPU).

verl is found with `importlib.util.find_spec` (which does not run the package) and its
`verl/trainer/config/ppo_trainer.yaml` is composed with hydra-core's compose API. On a CPU machine:
`pip install --no-deps verl==0.9.1 hydra-core`. A mistyped or removed key fails composition
("Could not override ..."); so does a mandatory value (`???`) left unset outside a disabled section.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any


class VerlConfigError(ValueError):
    """verl's config cannot be found, or the overrides do not compose against it."""


def verl_config_dir() -> Path:
    """PYRAG_VERL_CONFIG_DIR (a copy of verl/trainer/config), else the installed verl package's."""
    override = os.environ.get("PYRAG_VERL_CONFIG_DIR")
    if override:
        if not (Path(override) / "ppo_trainer.yaml").is_file():
            raise VerlConfigError(f"PYRAG_VERL_CONFIG_DIR={override} has no ppo_trainer.yaml")
        return Path(override)
    spec = importlib.util.find_spec("verl")
    if spec is None or not spec.submodule_search_locations:
        raise VerlConfigError(
            "verl is not installed; for the config check on a CPU machine: pip install --no-deps verl==0.9.1 hydra-core"
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / "trainer" / "config"
        if (path / "ppo_trainer.yaml").is_file():
            return path
    raise VerlConfigError(f"verl at {list(spec.submodule_search_locations)} has no trainer/config/ppo_trainer.yaml")


def verl_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("verl")
    except PackageNotFoundError:
        return None


def compose(overrides: list[str], config_name: str = "ppo_trainer") -> Any:
    """The composed and resolved verl config (an OmegaConf DictConfig) for these overrides."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=str(verl_config_dir()), version_base=None):
            cfg = hydra_compose(config_name=config_name, overrides=list(overrides))
        OmegaConf.resolve(cfg)
    except (HydraException, OmegaConfBaseException) as e:
        raise VerlConfigError(" ".join(str(e).split())) from None
    missing = sorted(k for k in OmegaConf.missing_keys(cfg) if not _disabled(cfg, k))
    if missing:
        raise VerlConfigError(f"mandatory values not set (???): {', '.join(missing)}")
    return cfg


def _disabled(cfg: Any, key: str) -> bool:
    """A key inside a section switched off with `enable: false` (e.g. reward.reward_model)."""
    from omegaconf import OmegaConf

    parts = key.split(".")
    for i in range(1, len(parts)):
        node = OmegaConf.select(cfg, ".".join(parts[:i]))
        if hasattr(node, "get") and node.get("enable", None) is False:
            return True
    return False
