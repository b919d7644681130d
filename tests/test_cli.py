"""The ``rawmamba`` entry point: fast top-level help, each command's full parser from its own module."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from rawmamba.cli import COMMANDS, build_parser, main


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    (subparsers,) = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return subparsers


def _summaries(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Sub-command name -> the help that the top-level listing shows for it."""
    return {choice.dest: choice.help for choice in _subparsers(parser)._choices_actions}


def test_top_level_help_imports_no_command_module():
    # A fresh interpreter: the help lists every command without importing torch or any command module.
    child = (
        "import sys\n"
        "from rawmamba.cli import COMMANDS, main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as stop:\n"
        "    assert stop.code == 0, stop.code\n"
        "loaded = sorted(m for m in ['torch', *(module for module, _ in COMMANDS.values())] if m in sys.modules)\n"
        "print('LOADED', loaded)\n"
    )
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True)
    assert "LOADED []" in result.stdout
    for name in COMMANDS:
        assert f"\n    {name} " in result.stdout


def test_summaries_are_the_helps_that_the_command_modules_register():
    assert _summaries(build_parser("all")) == {name: summary for name, (_, summary) in COMMANDS.items()}
    assert _summaries(build_parser()) == _summaries(build_parser("all"))


def test_a_command_gets_its_full_parser(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["demo", "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "usage: rawmamba demo" in out and "--checkpoint" in out and "1.5% RAW samples" in out


def test_unknown_command_is_refused(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["derenderr", "x.png"])
    assert stop.value.code == 2
    assert "invalid choice: 'derenderr'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command,work",
    [
        ("derender", "rawmamba.derender_files"),
        ("eval", "rawmamba.evaluate_checkpoints"),
        ("data", "rawmamba.data"),
        ("capture", "rawmamba.rawio"),
        ("demo", "rawmamba.demo"),
        ("bench", "rawmamba.baselines"),
    ],
)
def test_command_help_imports_no_torch(command, work):
    # These commands' parsers live apart from their work (and outside the packages that hold it), so --help
    # answers at once.
    child = (
        "import sys\n"
        "from rawmamba.cli import main\n"
        "try:\n"
        f"    main([{command!r}, '--help'])\n"
        "except SystemExit as stop:\n"
        "    assert stop.code == 0, stop.code\n"
        f"print('LOADED', sorted(m for m in ['torch', {work!r}] if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True)
    assert "LOADED []" in result.stdout and f"usage: rawmamba {command}" in result.stdout


def test_command_choices_are_those_of_the_modules_that_implement_them():
    from rawmamba.baselines import METHODS
    from rawmamba.cli_choices import BENCH_METHODS
    from rawmamba.evaluate_checkpoints import BASELINES
    from rawmamba.infer import BLENDS
    from rawmamba.isp.cfa import CFA
    from rawmamba.models.sample_refinement import REFINEMENTS

    commands = _subparsers(build_parser("all")).choices
    derender = {action.dest: action for action in commands["derender"]._actions}
    assert derender["refinement"].choices == REFINEMENTS and derender["blend"].choices == BLENDS
    assert CFA(derender["cfa"].default) is CFA.RGGB
    evaluate = {action.dest: action for action in commands["eval"]._actions}
    assert evaluate["refinement"].choices == REFINEMENTS and set(evaluate["baseline"].choices) == set(BASELINES)
    assert BENCH_METHODS == tuple(METHODS)
