"""The pipeline that joins agents, engine and retrieval; replay of recorded runs."""

from .runner import Pipeline, PipelineConfig, PipelineResult

__all__ = ["Pipeline", "PipelineConfig", "PipelineResult"]
