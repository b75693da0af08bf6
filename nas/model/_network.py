"""build_model: an ArchConfig as a torch module, its parts named as torchvision names the family's."""

from __future__ import annotations

from torch import Tensor, nn

from nas.config import ArchConfig, Unit


class _Places:
    """Where each module goes, by the config's layout.

    ``features`` (MobileNet, SqueezeNet): stem, blocks and last conv in ``features.N``; ``avgpool``;
    ``classifier``. ``stages`` (ShuffleNetV2): ``conv1``, ``maxpool``, ``stageK.N`` (a stride-2 block opens
    the next stage), ``conv5``, ``fc``.
    """

    def __init__(self, layout: str) -> None:
        self.layout = layout
        self.stage = 1
        self.count: dict[str, int] = {}

    def _next(self, container: str) -> str:
        n = self.count.get(container, 0)
        self.count[container] = n + 1
        return f"{container}.{n}"

    def __call__(self, role: str, unit: Unit) -> str:
        if self.layout == "features":
            return {"pool": "avgpool", "classifier": "classifier", "flatten": "flatten"}.get(role) or self._next(
                "features"
            )
        if role == "block":
            if self.stage == 1 or getattr(unit.op.part, "stride", 1) == 2:
                self.stage += 1
            return self._next(f"stage{self.stage}")
        names = {"stem": "conv1", "stem_pool": "maxpool", "last": "conv5", "pool": "avgpool", "classifier": "fc"}
        return names.get(role, role)


class Network(nn.Module):
    """The config's modules, run in order; ``unit_paths[u]`` are the state-dict paths of the modules of the
    config's ``u``-th unit (``config.units()``), which NetAdapt's slices name tensors under."""

    def __init__(self, config: ArchConfig) -> None:
        super().__init__()
        self.config = config
        place = _Places(config.layout)
        steps: list[nn.Module] = []
        self.unit_paths: list[list[str]] = []
        for unit in config.units():
            paths = []
            for role, module in unit.op.part.modules(unit.in_channels, config.norm):
                paths.append(place(role, unit))
                self._put(paths[-1], module)
                steps.append(module)
            self.unit_paths.append(paths)
        self._steps = steps  # a plain list: the modules are registered once, under their paths
        self.reset_parameters()

    def _put(self, path: str, module: nn.Module) -> None:
        *parents, name = path.split(".")
        owner: nn.Module = self
        for parent in parents:
            if not hasattr(owner, parent):
                owner.add_module(parent, nn.Sequential())
            owner = getattr(owner, parent)
        owner.add_module(name, module)

    def reset_parameters(self) -> None:
        """torchvision's initialisation: He (fan-out) for convs, N(0, 0.01) for linears, BN at identity.
        A network on the meta device (a structure: shapes, no values) has nothing to initialise."""
        if any(p.is_meta for p in self.parameters()):
            return
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        for step in self._steps:
            x = step(x)
        return x


def build_model(config: ArchConfig) -> Network:
    """A freshly initialised network for ``config`` (train mode, like any new torch module)."""
    return Network(config)
