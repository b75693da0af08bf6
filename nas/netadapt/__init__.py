"""NetAdapt driven by a latency model: ``run_netadapt(config=..., latency="x86_64", budget_ms=2)`` from
Python, ``python -m nas.netadapt`` from a shell; prunable units and exact weight inheritance."""

from nas.netadapt._run import NetAdaptResult, check_options, run_netadapt
from nas.netadapt._slice import Plan, Selection, plan, prune, selection
from nas.netadapt._units import Unit, fixed_widths, prunable_units, shrink

__all__ = [
    "NetAdaptResult",
    "Plan",
    "Selection",
    "Unit",
    "check_options",
    "fixed_widths",
    "plan",
    "prunable_units",
    "prune",
    "run_netadapt",
    "selection",
    "shrink",
]
