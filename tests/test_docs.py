"""Every command documents itself (help with an example) and is documented in README.md."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from evtrack.cli import cli

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def _walk(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    found = []
    for name, command in sorted(group.commands.items()):
        found.append(((*path, name), command))
        if isinstance(command, click.Group):
            found.extend(_walk(command, (*path, name)))
    return found


COMMANDS = _walk(cli)
LEAVES = [(path, cmd) for path, cmd in COMMANDS if not isinstance(cmd, click.Group)]


def _ids(items: list) -> list[str]:
    return [" ".join(path) for path, _ in items]


def test_the_walk_finds_the_commands() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {
        "experiments create",
        "experiments search",
        "runs describe",
        "artifacts log-artifact",
        "sql",
        "search",
        "compact",
    } <= names


@pytest.mark.parametrize("path, command", LEAVES, ids=_ids(LEAVES))
def test_every_command_has_help_with_an_example(path: tuple[str, ...], command: click.Command) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"], prog_name="evtrack")
    assert result.exit_code == 0, result.output
    assert command.help and command.help.strip()
    assert "Example" in result.output
    assert f"evtrack {' '.join(path)}" in result.output, "the example should show the command itself"


@pytest.mark.parametrize(
    "path, command",
    [c for c in COMMANDS if isinstance(c[1], click.Group)],
    ids=_ids([c for c in COMMANDS if isinstance(c[1], click.Group)]),
)
def test_every_group_has_help(path: tuple[str, ...], command: click.Group) -> None:
    assert command.help and command.help.strip()


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=_ids(COMMANDS))
def test_every_command_is_in_the_readme(path: tuple[str, ...]) -> None:
    assert f"evtrack {' '.join(path)}" in README


def _shown_commands(text: str) -> list[str]:
    """Shell commands in README code: code-block lines and inline spans that start with ``evtrack ``."""
    blocks = re.findall(r"```(?:bash|sh|console)?\n(.*?)```", text, flags=re.DOTALL)
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.DOTALL))
    lines = [part.strip() for block in blocks for line in block.splitlines() for part in line.split("&&")]
    return [c for c in lines + spans if c.startswith("evtrack ")]


def test_every_command_the_readme_shows_exists() -> None:
    shown = _shown_commands(README)
    assert len(shown) > 10
    for command in shown:
        words = command.split()
        first, second = words[1], (words[2] if len(words) > 2 else "")
        assert first in cli.commands, f"README shows `{command}`: {first!r} is not a command"
        group = cli.commands[first]
        if isinstance(group, click.Group):
            assert second in group.commands, f"README shows `{command}`: {second!r} is not a subcommand"


def test_every_environment_variable_is_in_the_settings_page() -> None:
    """docs/settings.md lists every ``EVTRACK_*`` variable the code reads (and only those)."""
    root = Path(__file__).resolve().parent.parent
    code = "\n".join(p.read_text() for d in ("evtrack", "compaction") for p in (root / d).rglob("*.py"))
    used = set(re.findall(r'"(EVTRACK_[A-Z0-9_]+)"', code)) - {"EVTRACK_COMPACT_CRASH_AT"}  # a test hook
    documented = set(re.findall(r"`(EVTRACK_[A-Z0-9_]+)`", (root / "docs" / "settings.md").read_text()))
    assert sorted(used - documented) == [], "read by the code but missing from docs/settings.md"
    assert sorted(documented - used) == [], "in docs/settings.md but read nowhere"
