"""The CLIs as a user runs them: tables on stdout; bad input -> one line on stderr, exit 2."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

import onnxruntime as ort
import pytest
import yaml

from nas._cli import HelpFormatter
from tests.conftest import DEFAULT_SPACE, LARGE, ROOT, SMALL, TINY_SPACE, call_main, run_cli, run_main


def test_show_config_prints_the_paper_table() -> None:
    result = run_cli("nas.space", "show", str(LARGE))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "mobilenetv3_large: 224x224, 1000 classes"
    assert "112x112x16  bneck 3x3" in result.stdout
    assert lines[-1].split()[-2:] == ["216,589,760", "5,483,032"]
    assert len([line for line in lines if "bneck" in line]) == 15


def test_show_space_reports_size_and_references() -> None:
    result = run_main("nas.space", "show", str(DEFAULT_SPACE))
    assert result.returncode == 0, result.stderr
    assert "size: 53,635,990,234,312,212,480 distinct configs" in result.stdout
    assert "mobilenetv3_large (yes)" in result.stdout
    assert "mobilenetv3_small (yes)" in result.stdout
    assert "mobilenetv3_large_075 (no)" in result.stdout
    assert "supernet parts (by downsampling): 4 [s0.stride=1,s3.depth=0] [s0.stride=1,s3.depth=2/3/4]" in result.stdout


def test_export_cli_writes_a_runnable_model(tmp_path: Path) -> None:
    out = tmp_path / "small.onnx"
    result = run_cli("nas.export", str(SMALL), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "56,510,400 MACs" in result.stdout
    inputs = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).get_inputs()
    assert inputs[0].shape == [1, 3, 224, 224]


def _config_text() -> str:
    return LARGE.read_text()


def _space_text(**stage0: object) -> str:
    data = yaml.safe_load(yaml.safe_dump(TINY_SPACE))
    data["stages"][0].update(stage0)
    return yaml.safe_dump(data)


BAD_FILES = {
    "list.yaml": ("- 1\n- 2\n", "the file is a list; expected a YAML mapping"),
    "empty.yaml": ("", "the file is empty; expected a YAML mapping"),
    "syntax.yaml": ("layers: [1, 2\n", "not valid YAML at line"),
    "neither.yaml": ("resolution: 224\n", "neither a config (needs 'layers') nor a space (needs 'stages')"),
    "unknown_key.yaml": (
        _config_text().replace("hidden_channels", "hiden_channels"),
        "head: unknown key 'hiden_channels'",
    ),
    "kernel.yaml": (
        _config_text().replace("{kernel: 3, expanded: 64", "{kernel: 4, expanded: 64"),
        "layers[1].kernel: 4 is not allowed; use one of 3, 5, 7",
    ),
    "stride.yaml": (
        _config_text().replace("out: 24, stride: 2", "out: 24, stride: 3"),
        "layers[1].stride: 3 is not allowed; use one of 1, 2",
    ),
    "channels.yaml": (
        _config_text().replace("out: 24, stride: 2", "out: -24, stride: 2"),
        "layers[1].out: -24 is too small; use an integer >= 1",
    ),
    "type.yaml": (
        _config_text().replace("resolution: 224", "resolution: '224'"),
        "resolution: expected an integer; got '224' (str)",
    ),
    "empty_choices.yaml": (_space_text(width=[]), "stages[0].width: the list is empty"),
    "space_kernel.yaml": (_space_text(kernel=[3, 9]), "stages[0].kernel[1]: 9 is not allowed; use one of 3, 5, 7"),
    "space_act.yaml": (
        _space_text(act="gelu"),
        "stages[0].act: 'gelu' is not allowed; use one of 'relu', 'hswish', 'relu6'",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_give_one_line_and_exit_2(name: str, tmp_path: Path) -> None:
    text, fragment = BAD_FILES[name]
    path = tmp_path / name
    path.write_text(text)
    result = run_main("nas.space", "show", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"error: {path}")
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_file_and_folder_out(tmp_path: Path) -> None:
    result = run_main("nas.space", "show", str(tmp_path / "nope.yaml"))
    assert (result.returncode, result.stderr) == (2, f"error: {tmp_path / 'nope.yaml'}: no such file\n")
    result = run_main("nas.export", str(SMALL), "--out", str(tmp_path))
    assert result.returncode == 2
    assert "is a folder; give a file name" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_python_m_nas_lists_every_console_script() -> None:
    import tomllib

    result = run_cli("nas")
    assert result.returncode == 0, result.stderr
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for script in scripts:
        assert script in result.stdout
        assert f"python -m nas.{script.removeprefix('nas-')}" in result.stdout


def test_exported_onnx_gets_the_permissions_of_any_other_output(tmp_path: Path) -> None:
    from nas._files import write_text_atomic

    write_text_atomic(tmp_path / "summary.txt", "x")
    result = run_cli("nas.export", str(SMALL), "--out", str(tmp_path / "small.onnx"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "small.onnx").stat().st_mode == (tmp_path / "summary.txt").stat().st_mode


COMMANDS = ["nas.search", "nas.netadapt", "nas.pipeline", "nas.evaluate", "nas.export", "nas.space", "nas.latency"]


def _options(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.Action]]:
    """Every option of a parser and of its subcommands, named as --help shows them."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += [(f"{name} {flag}", option) for flag, option in _options(sub)]
        elif action.option_strings and not isinstance(action, argparse._HelpAction):
            found.append((action.option_strings[0], action))
    return found


PARSERS = [(module, "_parser") for module in COMMANDS] + [
    ("nas.evaluate", "_fit_parser"),
    ("nas.supernet", "_train_parser"),
    ("nas.supernet", "_extract_parser"),
]


@pytest.mark.parametrize(("module", "maker"), PARSERS)
def test_help_shows_every_default(module: str, maker: str) -> None:
    parser = getattr(importlib.import_module(module if module == "nas.export" else f"{module}.__main__"), maker)()
    formatter = HelpFormatter(parser.prog)
    for flag, action in _options(parser):
        if action.required or action.nargs == 0:
            continue  # a required option has no default; a flag without a value is off when absent
        text = formatter._get_help_string(action) or ""
        assert "default" in text.lower(), f"{module} {flag}: --help does not say its default"


def test_a_library_logging_a_ctrl_c_with_its_traceback_is_silenced() -> None:
    import subprocess
    import sys

    code = (  # a process as a command runs: no root handler, so unconfigured loggers reach the last resort
        "import logging\n"
        "from nas import _cli\n"
        "_cli.show_logs()\n"
        "pool = logging.getLogger('sqlalchemy.pool.impl.QueuePool')\n"
        "try:\n"
        "    raise KeyboardInterrupt\n"
        "except KeyboardInterrupt:\n"
        "    pool.error('Exception during reset or similar', exc_info=True)\n"
        "try:\n"
        "    try:\n"
        "        raise KeyboardInterrupt\n"
        "    finally:\n"  # a clean-up failing while the Ctrl-C unwinds
        "        raise UnboundLocalError('updated_state')\n"
        "except UnboundLocalError:\n"
        "    pool.error('Exception during reset or similar', exc_info=True)\n"
        "pool.error('a real error')\n"
        "try:\n"
        "    raise ValueError('shown')\n"
        "except ValueError:\n"
        "    pool.error('a real error with its traceback', exc_info=True)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.stderr.startswith("a real error\na real error with its traceback\nTraceback")
    assert "ValueError: shown" in result.stderr
    assert "KeyboardInterrupt" not in result.stderr
    assert "updated_state" not in result.stderr


def test_an_error_raised_while_a_ctrl_c_unwinds_is_the_ctrl_c() -> None:
    def cleanup_fails_on_the_interrupt(argv: object) -> None:
        try:
            raise KeyboardInterrupt
        finally:  # as Optuna 5.1's trial loop does when the Ctrl-C lands while it records a trial
            raise UnboundLocalError("cannot access local variable 'updated_state'")

    def plain_error(argv: object) -> None:
        raise UnboundLocalError("a bug")

    result = call_main(cleanup_fails_on_the_interrupt, "search")
    assert result.returncode == 130
    assert result.stderr == "interrupted: rerun the same command to resume (finished work is kept)\n"
    with pytest.raises(UnboundLocalError, match="a bug"):
        call_main(plain_error, "search")
