"""NetAdapt driven by a latency table (in progress: prunable units and weight inheritance)."""

from nas.netadapt._slice import Selection, block_keys, prune, selection
from nas.netadapt._units import Unit, prunable_units, shrink

__all__ = ["Selection", "Unit", "block_keys", "prunable_units", "prune", "selection", "shrink"]
