"""Datasets: the shipped one, folders as users have them, CIFAR-10 batches, IDX files, Fashion-MNIST, and
the three splits (selection sees validation only; test is only reported)."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nas import NasError
from nas.data import FASHION_MNIST, load_dataset, stratified_holdout


def test_digits_ship_with_the_package() -> None:
    data = load_dataset("digits")
    assert data.images.shape == (1797, 1, 8, 8)
    assert data.num_classes == 10
    assert not data.flip  # a mirrored digit is not the same digit


def test_the_three_splits_are_disjoint_stratified_and_fixed() -> None:
    data = load_dataset("digits")
    parts = {split: set(data.indices(split).tolist()) for split in ("train", "validation", "test")}
    assert not parts["train"] & parts["validation"]
    assert not (parts["train"] | parts["validation"]) & parts["test"]
    assert sum(map(len, parts.values())) == len(data.labels)
    for split, share in (("test", 0.2), ("validation", 0.16)):  # validation: 20 % of the other 80 %
        per_class = torch.bincount(data.labels[data.indices(split)], minlength=10) / torch.bincount(data.labels)
        assert torch.all((per_class > share - 0.05) & (per_class < share + 0.05)), split
    assert torch.equal(load_dataset("digits").split, data.split)  # the same split every time
    assert "test split, never selected on" in data.describe("test")


def test_holdout_split_is_seeded() -> None:
    labels = torch.arange(100) % 4
    assert torch.equal(stratified_holdout(labels, 0.3, seed=1), stratified_holdout(labels, 0.3, seed=1))
    assert not torch.equal(stratified_holdout(labels, 0.3, seed=1), stratified_holdout(labels, 0.3, seed=2))


def test_batches_are_resized_normalized_and_augmented_deterministically() -> None:
    data = load_dataset("digits")
    index = data.indices("train")[:16]
    a, y = data.batch(index, 32, augment=True, generator=torch.Generator().manual_seed(0))
    b, _ = data.batch(index, 32, augment=True, generator=torch.Generator().manual_seed(0))
    plain, _ = data.batch(index, 32)
    assert a.shape == (16, 3, 32, 32)
    assert torch.equal(a, b)
    assert not torch.equal(a, plain)
    assert torch.equal(y, data.labels[index])


def _save(path: Path, size: tuple[int, int], mode: str = "RGB", value: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color=value if mode == "L" else (value, 0, 255 - value)).save(path)


def test_image_folder_with_mixed_sizes_modes_and_stray_files(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for i in range(6):
        _save(tmp_path / "cats" / f"{i}.png", (24, 24), value=i * 20)
        _save(tmp_path / "dogs" / f"{i}.jpg", (32, 24) if i % 2 else (24, 24), mode="L" if i < 2 else "RGB", value=200)
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    (tmp_path / "cats" / "broken.png").write_bytes(b"\x89PNG garbage")
    with caplog.at_level("WARNING", logger="nas"):
        data = load_dataset(tmp_path)
    assert data.classes == ("cats", "dogs")
    assert data.images.shape == (12, 3, 24, 24)
    err = caplog.text
    assert "skipped 1 non-image files and 1 unreadable images" in err
    assert "resized images of 2 sizes to 24x24" in err
    assert "converted 2 grayscale images to RGB" in err


@pytest.mark.parametrize(
    ("layout", "fragment"),
    [
        ({}, "no class subfolders with images"),
        ({"only/a.png": True}, "only one class (only); a classifier needs at least two"),
        ({"a/readme.txt": False, "b/x.csv": False}, "no class subfolders with images"),
    ],
)
def test_unusable_folders_are_clear_errors(tmp_path: Path, layout: dict[str, bool], fragment: str) -> None:
    for name, is_image in layout.items():
        if is_image:
            _save(tmp_path / name, (8, 8))
        else:
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text("x")
    with pytest.raises(NasError, match=re.escape(fragment)):
        load_dataset(tmp_path)


def test_missing_folder_and_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(
        NasError, match=r"no such dataset folder; give a folder, idx:DIR or a built-in name \(digits, fash"
    ):
        load_dataset(tmp_path / "absent")
    with pytest.raises(NasError, match="no such dataset folder"):
        load_dataset("mnist")


def test_cifar10_binary_and_python_batches(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        rows = np.concatenate([rng.integers(0, 10, (20, 1)), rng.integers(0, 256, (20, 3072))], axis=1)
        (tmp_path / f"{name}.bin").write_bytes(rows.astype(np.uint8).tobytes())
    data = load_dataset(tmp_path)
    assert data.images.shape == (120, 3, 32, 32)
    assert len(data.indices("test")) == 20  # CIFAR's own test batch is the test split
    assert data.official_test
    assert 18 <= len(data.indices("validation")) <= 22  # 20 % of each class of the 100 training images

    python = tmp_path / "py"
    python.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (10, 3072)).astype(np.uint8), b"labels": list(range(10))}
        (python / name).write_bytes(pickle.dumps(batch))
    assert load_dataset(python).images.shape == (60, 3, 32, 32)


def test_cifar_reader_refuses_pickled_code(tmp_path: Path) -> None:
    class Exploit:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "data_batch_1").write_bytes(pickle.dumps({b"data": Exploit(), b"labels": []}))
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": [], b"labels": []}))
    with pytest.raises(NasError, match=r"not a CIFAR-10 batch \(UnpicklingError: refusing to load builtins.print\)"):
        load_dataset(tmp_path)


def _idx(array: np.ndarray) -> bytes:
    codes = {np.dtype(np.uint8): 0x08}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def _idx_folder(folder: Path, *, gz: bool, train: int = 50, test: int = 20) -> Path:
    import gzip

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", train), ("t10k", test)):
        files = {
            f"{split}-images-idx3-ubyte": _idx(rng.integers(0, 256, (count, 6, 6), dtype=np.uint8)),
            f"{split}-labels-idx1-ubyte": _idx((np.arange(count) % 5).astype(np.uint8)),
        }
        for name, content in files.items():
            (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(content) if gz else content)
    return folder


@pytest.mark.parametrize("gz", [False, True])
def test_idx_files_plain_or_gzipped_give_their_test_set_as_the_test_split(tmp_path: Path, gz: bool) -> None:
    data = load_dataset(f"idx:{_idx_folder(tmp_path / 'mnistish', gz=gz)}")
    assert data.images.shape == (70, 1, 6, 6)
    assert data.classes == ("0", "1", "2", "3", "4")
    assert data.indices("test").tolist() == list(range(50, 70))  # t10k, untouched by selection
    assert len(data.indices("validation")) == 10  # 20 % of the 50 training images
    assert data.official_test
    assert data.name == "mnistish"


def test_a_truncated_idx_file_is_one_clear_error(tmp_path: Path) -> None:
    folder = _idx_folder(tmp_path / "d", gz=False)
    images = folder / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-7])
    with pytest.raises(NasError, match=r"train-images-idx3-ubyte: truncated IDX file \(1793 bytes of data, its"):
        load_dataset(f"idx:{folder}")
    gz = _idx_folder(tmp_path / "g", gz=True)
    (gz / "t10k-labels-idx1-ubyte.gz").write_bytes((gz / "t10k-labels-idx1-ubyte.gz").read_bytes()[:-9])
    with pytest.raises(NasError, match=r"t10k-labels-idx1-ubyte.gz: cannot be read as a \(gzipped\) IDX file"):
        load_dataset(f"idx:{gz}")
    with pytest.raises(NasError, match=r"no \*train-images-idx\* file"):
        load_dataset(f"idx:{tmp_path / 'absent'}")


def test_fashion_mnist_missing_names_the_install_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import nas.data

    monkeypatch.setattr(nas.data, "FASHION_MNIST", tmp_path / "absent")
    with pytest.raises(NasError, match="install it with: sudo apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist")


@pytest.mark.skipif(not FASHION_MNIST.is_dir(), reason="dataset-fashion-mnist not installed (.ci/run installs it)")
def test_fashion_mnist_from_the_debian_package() -> None:
    data = load_dataset("fashion-mnist")
    assert data.images.shape == (70000, 1, 28, 28)
    assert [len(data.indices(split)) for split in ("train", "validation", "test")] == [48000, 12000, 10000]
    assert data.classes[9] == "Ankle boot"
    assert data.flip
