"""Where the project's shipped files live (search spaces, reference configs, latency tables)."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SPACES_DIR = PROJECT_ROOT / "search_spaces"
REFERENCE_DIR = SPACES_DIR / "reference"
DEFAULT_SPACE = SPACES_DIR / "mobilenetv3.yaml"


def reference_configs() -> dict[str, Path]:
    """The shipped reference networks (MobileNetV3-Large/-Small), by file stem."""
    return {path.stem: path for path in sorted(REFERENCE_DIR.glob("*.yaml"))}


TABLES_DIR = PROJECT_ROOT / "latency_tables"
