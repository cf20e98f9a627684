"""Moved to :mod:`workbench.workspace.scores`; kept so that
``from workbench.widgets.scores import ScoreStore`` keeps working."""

from __future__ import annotations

from ..workspace.scores import BUILTIN_SCORES, ScoreInfo, ScoreStore

__all__ = ["BUILTIN_SCORES", "ScoreInfo", "ScoreStore"]
