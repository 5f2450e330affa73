"""Subcommands imported when they are used, so that `ehc --help` does not import every service.

Typer has no lazy groups of its own. :func:`lazy_group` makes a group class (``typer.Typer(cls=...)``)
that lists extra subcommands by name and one-line help only; the module behind one is imported
when that subcommand runs, completes or shows its own help. A target is ``"module:attr"`` (a
Typer app, a click command or a command function), optionally followed by the names of subcommands
inside it (``"services.intake.entrypoints.cli:intake_app import"``), or a function that returns
a Typer app or a click command. ``tests/test_cli_lazy.py`` checks that every listed help line is
the loaded command's own.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

import typer
import typer.main
from typer._coercion import PassThroughRuntimeParam
from typer.core import TyperCommand, TyperGroup

Target = str | Callable[[], Any]


def load_command(name: str, target: Target) -> Any:
    """The click command behind a target (see the module's docstring)."""
    path: list[str] = []
    if isinstance(target, str):
        module, _, rest = target.partition(":")
        attr, *path = rest.split()
        obj = getattr(import_module(module), attr)
    else:
        obj = target()
    if isinstance(obj, typer.Typer):
        command = typer.main.get_command(obj)
    elif hasattr(obj, "make_context"):
        command = obj
    else:  # a command function
        single = typer.Typer()
        single.command(name)(obj)
        command = typer.main.get_command(single)
    for part in path:
        command = command.commands[part]
    # As under add_typer: the completion options belong to the root command only.
    command.params = [p for p in command.params if p.name not in ("install_completion", "show_completion")]
    return command


class LazyCommand(TyperCommand):
    """Stands for a subcommand in its group's listing; anything else is the real command's."""

    def __init__(self, name: str, target: Target, help_: str) -> None:
        super().__init__(name=name, help=help_, short_help=help_)
        self.target = target
        self._loaded: Any = None

    def load(self) -> Any:
        if self._loaded is None:
            self._loaded = load_command(self.name or "", self.target)
        return self._loaded

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        return self.load().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: Any) -> Any:
        return self.load().invoke(ctx)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        return self.load().get_command(ctx, cmd_name)

    def list_commands(self, ctx: Any) -> list[str]:
        loaded = self.load()
        return loaded.list_commands(ctx) if hasattr(loaded, "list_commands") else []

    def get_params(self, ctx: Any) -> list[Any]:
        return self.load().get_params(ctx)  # type: ignore[no-any-return]

    def shell_complete(self, ctx: Any, incomplete: str) -> list[Any]:
        return self.load().shell_complete(ctx, incomplete)  # type: ignore[no-any-return]

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self.load().format_help(ctx, formatter)


def _pass_flags_through(params: list[Any]) -> list[Any]:
    """typer coerces every value through a pydantic TypeAdapter, even a group's own ``--help`` and
    ``--install-completion`` flags, which imports pydantic (a tenth of a second) for `ehc --help`. A
    flag gives a bool or nothing, so a group's flags are passed through as they come."""
    for param in params:
        descriptor = getattr(param, "type_descriptor", None)
        if (getattr(param, "is_flag", False) and descriptor is not None and descriptor.annotation is bool
                and getattr(param, "_runtime_param", False) is None):
            param._runtime_param = PassThroughRuntimeParam(parameter_info=descriptor.parameter_info, annotation=bool)
    return params


def lazy_group(entries: dict[str, tuple[Target, str]]) -> type[TyperGroup]:
    """A group class whose subcommands ``entries`` (name -> (target, one-line help)) are imported when
    used; commands registered on the Typer app itself the usual way come first."""

    class LazyGroup(TyperGroup):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            for name, (target, help_) in entries.items():
                self.commands.setdefault(name, LazyCommand(name, target, help_))

        def get_params(self, ctx: Any) -> list[Any]:
            return _pass_flags_through(super().get_params(ctx))

    return LazyGroup
