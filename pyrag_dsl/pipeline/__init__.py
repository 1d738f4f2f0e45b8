"""The pipeline that joins agents, engine and retrieval; replay of recorded runs."""

from .config import pipeline_config
from .runner import Pipeline, PipelineConfig, PipelineResult
from .session import Session, Settings

__all__ = ["Pipeline", "PipelineConfig", "PipelineResult", "Session", "Settings", "pipeline_config"]
