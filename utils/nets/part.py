"""What bodies and heads share: a part of a network that reads its settings from a configuration."""

from __future__ import annotations

import copy
from typing import ClassVar


class Part:
    """A registered body or head: the registry holds one unconfigured instance; a run uses ``configured(config)``."""

    settings: ClassVar[dict[str, str]] = {}  # attribute -> the ModelConfig field it is read from

    def configured(self, config) -> Part:
        """A copy holding this part's ``settings`` read from ``config`` (a ``models.ModelConfig``; models imports the
        parts, not the reverse)."""
        part = copy.copy(self)
        for attribute, field in self.settings.items():
            setattr(part, attribute, getattr(config, field))
        return part
