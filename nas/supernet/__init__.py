"""Weight-sharing supernets: ``train_supernet(space=..., out=...)`` trains one for a space once, after
which ``--evaluator supernet`` scores any config of it in seconds and ``extract_weights`` gives a
config's standalone weights; ``python -m nas.supernet`` from a shell."""

from nas.model import Supernet, SupernetParts, load_supernet
from nas.supernet._train import SupernetRecipe, extract_weights, smallest_config, train_supernet

__all__ = [
    "Supernet",
    "SupernetParts",
    "SupernetRecipe",
    "extract_weights",
    "load_supernet",
    "smallest_config",
    "train_supernet",
]
