"""Where Amazon's official SP-API models live: `SPAPI_MODELS_DIR`, else `../shared/spapi-models` beside
the repository. They are reference data, not part of the project; code that uses them works without
them (the simulator skips full feed-schema validation, tests that need them skip with the reason)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def spapi_models_dir() -> Path | None:
    configured = os.environ.get("SPAPI_MODELS_DIR")
    candidate = Path(configured) if configured else (REPO.parent / "shared" / "spapi-models")
    return candidate.resolve() if candidate.is_dir() else None


def spapi_models_path(*parts: str) -> Path:
    """A path inside the models folder (which may not exist: callers check, or skip)."""
    base = spapi_models_dir() or (REPO.parent / "shared" / "spapi-models")
    return base.joinpath(*parts)
