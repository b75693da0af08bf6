"""build_model: an ArchConfig as a torch module (MobileNetV3 conventions)."""

from __future__ import annotations

from torch import Tensor, nn

from nas.config import ArchConfig
from nas.model._blocks import ConvBNAct, InvertedResidual, classifier


class Network(nn.Module):
    """features (stem, blocks, last conv) -> avgpool -> classifier, named as in torchvision."""

    def __init__(self, config: ArchConfig) -> None:
        super().__init__()
        self.config = config
        stem, head = config.stem, config.head
        features: list[nn.Module] = [ConvBNAct(3, stem.channels, stem.kernel, stride=stem.stride, act=stem.act)]
        channels = stem.channels
        for layer in config.layers:
            features.append(InvertedResidual(channels, layer))
            channels = layer.out
        features.append(ConvBNAct(channels, head.last_channels, 1, act=head.act))
        self.features = nn.Sequential(*features)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = classifier(head, config.num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torchvision's initialisation: He (fan-out) for convs, N(0, 0.01) for linears, BN at identity."""
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
        x = self.avgpool(self.features(x)).flatten(1)
        return self.classifier(x)


def build_model(config: ArchConfig) -> Network:
    """A freshly initialised network for ``config`` (train mode, like any new torch module)."""
    return Network(config)
