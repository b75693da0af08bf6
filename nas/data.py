"""Datasets from disk or from an installed package (no downloads): ImageFolder trees, CIFAR-10, IDX files,
digits, Fashion-MNIST.

``load_dataset(spec)`` takes a built-in name (``digits``: scikit-learn's 1,797 handwritten 8x8 digits,
shipped inside the package; ``fashion-mnist``: Debian's ``dataset-fashion-mnist``), ``idx:DIR`` (MNIST-style
IDX files, plain or gzipped) or a folder (an ImageFolder tree of class subfolders, or CIFAR-10's
python/binary batches). Images are kept as uint8; batches are resized to the evaluator's resolution,
normalized with the training split's statistics and lightly augmented, all with torch ops.

Every dataset has three splits: ``train``; ``validation``, carved from the training images, which is all
that anything selecting (search, NetAdapt, early stopping) may score on; and ``test`` (the official test set
where there is one), which is only ever reported.
"""

from __future__ import annotations

import gzip
import io
import logging
import pickle
import struct
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from nas._errors import NasError

logger = logging.getLogger(__name__)

BUILTIN = ("digits", "fashion-mnist")
SPLITS = ("train", "validation", "test")  # the codes of Dataset.split: 0, 1, 2
VALIDATION_FRACTION = 0.2  # of the training images
TEST_FRACTION = 0.2  # of a dataset that has no official test set
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"
)  # fmt: skip
_IDX_TYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}  # fmt: skip
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
MAX_STORED_SIZE = 224


@dataclass
class Dataset:
    """Images (uint8, N x C x H x W), labels, class names and fixed train/validation/test splits."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    split: torch.Tensor  # per image, its split's index in SPLITS (see split_codes)
    flip: bool = True  # horizontal flips are label-preserving (not for digits)
    notes: tuple[str, ...] = ()
    official_test: bool = False  # the test split is the dataset's own test set (else a seeded stratified share)
    _stats: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        counts = torch.bincount(self.split.long(), minlength=len(SPLITS))
        if not bool(counts.all()):
            empty = [split for split, count in zip(SPLITS, counts.tolist(), strict=True) if not count]
            raise NasError(
                f"{self.name}: {len(self.labels)} images leave no {' or '.join(empty)} images; every class needs"
                " at least 2 training images (one is kept for validation), and a test set; add images"
            )

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def indices(self, split: str) -> torch.Tensor:
        if split not in SPLITS:
            raise ValueError(f"split {split!r}: one of {', '.join(SPLITS)}")
        return torch.nonzero(self.split == SPLITS.index(split)).flatten()

    def describe(self, split: str) -> str:
        """Which images a number was measured on, for every output that shows one."""
        what = {"test": "official test set" if self.official_test else "test split, never selected on"}
        return f"{self.name} {what.get(split, split + ' split')} ({len(self.indices(split))} images)"

    def normalization(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std of the training images (validation and test are never looked at)."""
        if self._stats is None:
            train = self.images[self.split == 0].float() / 255
            mean = train.mean(dim=(0, 2, 3))
            std = train.std(dim=(0, 2, 3)).clamp_min(1e-3)
            self._stats = (mean, std)
        return self._stats

    def batch(
        self, index: torch.Tensor, resolution: int, *, augment: bool = False, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Float images (B x 3 x R x R), normalized, optionally augmented, with their labels."""
        mean, std = self.normalization()
        x = (self.images[index].float() / 255 - mean[None, :, None, None]) / std[None, :, None, None]
        if x.shape[-1] != resolution:
            x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False)
        if augment:
            x = _augment(x, flip=self.flip, generator=generator)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return x.contiguous(), self.labels[index]

    def batches(
        self,
        split: str,
        batch_size: int,
        resolution: int,
        *,
        augment: bool = False,
        generator: torch.Generator | None = None,
        shuffle: bool = False,
        limit: int | None = None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The split in batches; ``limit``: only its first images (splits are drawn at random, so these
        are a fixed random sample of it)."""
        index = self.indices(split)[:limit]
        if shuffle:
            index = index[torch.randperm(len(index), generator=generator)]
        for start in range(0, len(index), batch_size):
            yield self.batch(index[start : start + batch_size], resolution, augment=augment, generator=generator)


def _augment(x: torch.Tensor, *, flip: bool, generator: torch.Generator | None) -> torch.Tensor:
    """Random shifts by up to 1/8 of the side (reflect padding) and, where allowed, horizontal flips."""
    n, _, h, w = x.shape
    pad = max(1, h // 8)
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None].expand(-1, x.shape[1], -1, w + 2 * pad)
    out = torch.gather(padded, 2, rows)
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :].expand(-1, x.shape[1], h, -1)
    out = torch.gather(out, 3, cols)
    if flip:
        mirror = torch.rand(n, generator=generator) < 0.5
        out = torch.where(mirror[:, None, None, None], out.flip(-1), out)
    return out


def stratified_holdout(labels: torch.Tensor, fraction: float, seed: int = 0) -> torch.Tensor:
    """The same held-out images for a dataset every time: ``fraction`` of each class, seeded (at least one
    of a class, and never its only image)."""
    generator = torch.Generator().manual_seed(seed)
    holdout = torch.zeros(len(labels), dtype=torch.bool)
    for label in labels.unique():
        members = torch.nonzero(labels == label).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        holdout[members[: min(len(members) - 1, max(1, round(len(members) * fraction)))]] = True
    return holdout


def split_codes(labels: torch.Tensor, *, test: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
    """Each image's split (index in SPLITS): ``test`` (a mask: the official test set), else a stratified
    TEST_FRACTION; then a stratified VALIDATION_FRACTION of the rest is validation, the remainder train."""
    test = stratified_holdout(labels, TEST_FRACTION, seed) if test is None else test
    codes = torch.zeros(len(labels), dtype=torch.int8)
    codes[test] = SPLITS.index("test")
    rest = torch.nonzero(~test).flatten()
    codes[rest[stratified_holdout(labels[rest], VALIDATION_FRACTION, seed + 1)]] = SPLITS.index("validation")
    return codes


def load_dataset(spec: str | Path) -> Dataset:
    """A built-in name (``digits``, ``fashion-mnist``), ``idx:DIR``, or a folder: an ImageFolder tree or
    CIFAR-10's batches."""
    text = str(spec)
    if text == "digits":
        return _digits()
    if text == "fashion-mnist":
        if not FASHION_MNIST.is_dir():
            raise NasError(
                f"fashion-mnist: {FASHION_MNIST} is missing; install it with: sudo apt-get install"
                " dataset-fashion-mnist (or give --data idx:DIR with the four IDX files)"
            )
        return _idx(FASHION_MNIST, name="fashion-mnist", classes=FASHION_CLASSES, flip=True)
    if text.startswith("idx:"):
        return _idx(Path(text.removeprefix("idx:")))
    folder = Path(text)
    if not folder.exists():
        raise NasError(
            f"{folder}: no such dataset folder; give a folder, idx:DIR or a built-in name ({', '.join(BUILTIN)})"
        )
    if not folder.is_dir():
        raise NasError(f"{folder}: is a file; give a folder of class subfolders, CIFAR-10 batches, or 'digits'")
    if _exists(folder / "data_batch_1") or _exists(folder / "test_batch"):
        return _cifar10(folder)
    return _image_folder(folder)


def _digits() -> Dataset:
    from importlib.resources import files

    try:
        resource = files("sklearn.datasets") / "data" / "digits.csv.gz"
        with gzip.open(io.BytesIO(resource.read_bytes())) as handle:
            data = np.loadtxt(handle, delimiter=",")
    except (ModuleNotFoundError, FileNotFoundError):
        raise NasError("the built-in 'digits' dataset needs scikit-learn: pip install scikit-learn") from None
    images = torch.from_numpy((data[:, :-1] * (255 / 16)).round().astype(np.uint8)).reshape(-1, 1, 8, 8)
    labels = torch.from_numpy(data[:, -1].astype(np.int64))
    return Dataset(
        name="digits",
        images=images,
        labels=labels,
        classes=tuple(str(d) for d in range(10)),
        split=split_codes(labels),
        flip=False,
    )


class _ArrayUnpickler(pickle.Unpickler):
    """Loads CIFAR-10's python batches: plain containers and numpy arrays only, never other objects."""

    ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
        }
    )

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file, python (pickled arrays only) or binary (``NAME.bin``: label byte + 3072 pixels)."""
    binary = path.with_name(path.name + ".bin")
    try:
        if binary.exists():
            path = binary
            raw = np.frombuffer(binary.read_bytes(), dtype=np.uint8).reshape(-1, 3073)
            images, labels = raw[:, 1:].reshape(-1, 3, 32, 32), raw[:, 0].astype(np.int64)
        else:
            with path.open("rb") as handle:
                batch = _ArrayUnpickler(handle, encoding="bytes").load()
            images = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            labels = np.asarray(batch[b"labels"], dtype=np.int64).reshape(-1)
    except (OSError, pickle.UnpicklingError, KeyError, TypeError, ValueError, EOFError) as exc:
        raise NasError(f"{path}: not a CIFAR-10 batch ({type(exc).__name__}: {str(exc)[:120]})") from None
    if len(labels) != len(images) or not len(labels) or labels.min() < 0 or labels.max() > 9:
        raise NasError(
            f"{path}: not a CIFAR-10 batch ({len(images)} images, {len(labels)} labels"
            f"{'' if not len(labels) else f' from {labels.min()} to {labels.max()}'}; expected as many labels,"
            " each 0-9); replace the file with the original"
        )
    return images, labels


def _cifar10(folder: Path) -> Dataset:
    parts = [_cifar_batch(folder / f"data_batch_{i}") for i in range(1, 6) if _exists(folder / f"data_batch_{i}")]
    test = folder / "test_batch"
    if not _exists(test):
        raise NasError(f"{folder}: CIFAR-10 folder without test_batch; it is the test split, copy it there")
    held = _cifar_batch(test)
    images = np.concatenate([p[0] for p in parts] + [held[0]])
    labels = np.concatenate([p[1] for p in parts] + [held[1]])
    test = torch.zeros(len(labels), dtype=torch.bool)
    test[-len(held[1]) :] = True
    classes = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    label_tensor = torch.from_numpy(labels)
    return Dataset(
        "cifar10", torch.from_numpy(images.copy()), label_tensor, classes, split_codes(label_tensor, test=test),
        official_test=True,
    )  # fmt: skip


def _exists(path: Path) -> bool:
    return path.exists() or path.with_name(path.name + ".bin").exists()


def _image_folder(folder: Path) -> Dataset:
    from PIL import Image, UnidentifiedImageError

    class_dirs = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    files = {d.name: sorted(f for f in d.rglob("*") if f.is_file()) for d in class_dirs}
    skipped = sum(1 for fs in files.values() for f in fs if f.suffix.lower() not in IMAGE_SUFFIXES)
    files = {name: [f for f in fs if f.suffix.lower() in IMAGE_SUFFIXES] for name, fs in files.items()}
    files = {name: fs for name, fs in files.items() if fs}
    if not files:
        raise NasError(f"{folder}: no class subfolders with images (expected {folder}/CLASS/IMAGE.png ...)")
    if len(files) == 1:
        raise NasError(f"{folder}: only one class ({next(iter(files))}); a classifier needs at least two")
    decoded, labels, unreadable = [], [], 0
    for label, fs in enumerate(files.values()):
        for f in fs:
            try:
                with Image.open(f) as image:
                    image.load()
                    decoded.append(image.copy())
                    labels.append(label)
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
                unreadable += 1  # PIL raises these for truncated, corrupt or oversized files
    present = set(labels)
    empty = [name for label, name in enumerate(files) if label not in present]
    if empty:
        raise NasError(
            f"{folder}/{empty[0]}: none of its {len(files[empty[0]])} images could be read"
            f"{f' (nor those of {len(empty) - 1} more classes)' if len(empty) > 1 else ''}; replace or remove them"
        )
    modes = Counter("L" if im.mode in ("L", "1", "I;16", "I") else "RGB" for im in decoded)
    mode = "L" if set(modes) == {"L"} else "RGB"
    sizes = Counter(im.size for im in decoded)
    (width, height), _ = sizes.most_common(1)[0]
    side = min(max(width, height), MAX_STORED_SIZE)
    notes = []
    if skipped or unreadable:
        notes.append(f"skipped {skipped} non-image files and {unreadable} unreadable images in {folder}")
    if len(sizes) > 1 or side != width or width != height:
        notes.append(f"resized images of {len(sizes)} sizes to {side}x{side}")
    if len(modes) > 1:
        notes.append(f"converted {modes['L']} grayscale images to RGB")
    arrays = [np.asarray(im.convert(mode).resize((side, side), Image.BILINEAR)) for im in decoded]
    stacked = np.stack(arrays)
    images = torch.from_numpy(stacked[:, None] if mode == "L" else stacked.transpose(0, 3, 1, 2).copy())
    label_tensor = torch.tensor(labels, dtype=torch.int64)
    for note in notes:
        logger.warning("note: %s", note)
    return Dataset(
        name=folder.name,
        images=images,
        labels=label_tensor,
        classes=tuple(files),
        split=split_codes(label_tensor),
        notes=tuple(notes),
    )


def read_idx(path: Path) -> np.ndarray:
    """One IDX file (MNIST's format: zero bytes, type code, rank, big-endian sizes, data), plain or gzipped."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise NasError(
            f"{path}: cannot be read as a (gzipped) IDX file ({exc}); replace it with the original"
        ) from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_TYPES or not 1 <= raw[3] <= 4:
        raise NasError(
            f"{path}: not an IDX file (its first bytes are {raw[:4].hex() or 'missing'}); give MNIST-style IDX files"
        )
    dtype, rank = _IDX_TYPES[raw[2]], raw[3]
    if len(raw) < 4 + 4 * rank:
        raise NasError(f"{path}: truncated IDX file (its header is cut short); replace it with the original")
    shape = struct.unpack(f">{rank}I", raw[4 : 4 + 4 * rank])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - 4 - 4 * rank != expected:
        raise NasError(
            f"{path}: truncated IDX file ({len(raw) - 4 - 4 * rank} bytes of data, its header says {expected});"
            " replace it with the original"
        )
    return np.frombuffer(raw, dtype=dtype, offset=4 + 4 * rank).reshape(shape)


def _idx_file(folder: Path, part: str) -> Path:
    """The file of ``part`` (e.g. ``train-images``), by MNIST's names, also prefixed (EMNIST) or gzipped."""
    found = sorted(p for p in folder.glob(f"*{part}-idx*") if p.is_file()) if folder.is_dir() else []
    if not found:
        raise NasError(
            f"{folder}: no *{part}-idx* file; an IDX dataset folder holds train-images, train-labels, t10k-images"
            " and t10k-labels (MNIST's names, plain or .gz)"
        )
    return found[0]


def _idx(
    folder: Path, *, name: str | None = None, classes: tuple[str, ...] | None = None, flip: bool = False
) -> Dataset:
    """MNIST-format data: the train files give train and validation, the t10k (test) files the test split."""
    parts = []
    for split in ("train", "t10k"):
        images = read_idx(_idx_file(folder, f"{split}-images"))
        labels_path = _idx_file(folder, f"{split}-labels")
        labels = read_idx(labels_path)
        if images.ndim != 3 or images.dtype != np.uint8 or labels.ndim != 1 or len(labels) != len(images):
            raise NasError(
                f"{folder}: {split} images {images.shape} {images.dtype} and labels {labels.shape} do not match;"
                " expected N x H x W bytes and N labels"
            )
        parts.append((images, labels.astype(np.int64)))
    labels = np.concatenate([p[1] for p in parts])
    count = int(labels.max()) + 1 if len(labels) else 0
    if not len(labels) or labels.min() < 0 or (classes is not None and count > len(classes)):
        raise NasError(f"{labels_path}: labels run from {labels.min(initial=0)} to {count - 1}; expected 0 to N-1")
    if parts[0][0].shape[1:] != parts[1][0].shape[1:]:
        raise NasError(f"{folder}: train images are {parts[0][0].shape[1:]}, test images {parts[1][0].shape[1:]}")
    test = torch.zeros(len(labels), dtype=torch.bool)
    test[len(parts[0][1]) :] = True
    label_tensor = torch.from_numpy(labels)
    return Dataset(
        name=name or folder.name,
        images=torch.from_numpy(np.concatenate([p[0] for p in parts]))[:, None],
        labels=label_tensor,
        classes=classes or tuple(str(i) for i in range(count)),
        split=split_codes(label_tensor, test=test),
        flip=flip,  # digits and letters are not mirror images of themselves; clothes are
        official_test=True,
    )
