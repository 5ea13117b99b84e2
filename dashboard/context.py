"""What every page callback needs, handed over by `create_app` (never a module-level global)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine

from dashboard.flags import FlagRules
from dashboard.scope import Scope, ScopeProvider, clinic_wide_viewer


@dataclass(frozen=True)
class AppContext:
    engine: Engine
    scope_provider: ScopeProvider = clinic_wide_viewer
    flag_rules: FlagRules = field(default_factory=FlagRules)
    page_size: int = 25

    def scope(self) -> Scope:
        """The viewer's scope for this request."""
        return self.scope_provider()
