"""How every command reads its options: one rule for several values, no option given twice.

Click wants one flag per value of a multi-valued option (``--seeds 1 --seeds 2``). musefusion's commands also read
``--seeds 1 2 3`` and, for the options in :data:`COMMA_OPTIONS`, ``--seeds 1,2,3``: values run until the next
flag. An option that takes one value and is given twice is refused instead of the last one winning silently.
Both rules live in the parser of :class:`Command` (the class every command is registered with), so they hold for
the console script, ``CliRunner`` and anything else that invokes the click command; the argument list itself is
never rewritten.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperCommand, TyperGroup

from musefusion.errors import ConfigError

#: Multi-valued options whose values may also be joined by commas (never paths, which may hold commas).
COMMA_OPTIONS = frozenset({"features", "seeds", "names"})


def _is_flag(arg: str) -> bool:
    """Whether ``arg`` starts another option (``-1.5`` is a value, ``-`` alone too).

    Examples:
        >>> [_is_flag(a) for a in ("--out", "-v", "-1.5", "-", "egemaps")]
        [True, True, False, False, False]
    """
    if len(arg) < 2 or not arg.startswith("-"):
        return False
    try:
        float(arg)
    except ValueError:
        return True
    return False


def split_values(param_name: str, value: str) -> list[str]:
    """``value`` split at commas for the options in :data:`COMMA_OPTIONS`, else as given.

    Examples:
        >>> split_values("features", "egemaps, vggface")
        ['egemaps', 'vggface']
        >>> split_values("streams", "runs/a,b")
        ['runs/a,b']
    """
    if param_name not in COMMA_OPTIONS:
        return [value]
    return [v.strip() for v in value.split(",") if v.strip()] or [value]


def _many_values(option: Any) -> None:
    """Make the parser's ``option`` (action ``append``) also take the values that follow it up to the next flag."""
    append = option.process
    name = option.obj.name

    def process(value: Any, state: Any) -> None:
        values = [value]
        while state.rargs and not _is_flag(state.rargs[0]) and state.rargs[0] != "--":
            values.append(state.rargs.pop(0))
        for v in values:
            for part in split_values(name, v) if isinstance(v, str) else [v]:
                append(part, state)

    option.process = process


def _once(option: Any, flag: str) -> None:
    """Make the parser's single-valued ``option`` refuse a second occurrence."""
    store = option.process

    def process(value: Any, state: Any) -> None:
        if option.dest in state.opts:
            raise ConfigError(f"Option {flag} is given twice ({state.opts[option.dest]!r} and {value!r}); it "
                              "takes one value: give it once.")
        store(value, state)

    option.process = process


def _is_argument(param: Any) -> bool:
    return getattr(param, "param_type_name", "") == "argument"


def _metavar(param: Any, ctx: Any) -> str | None:
    """The metavar an option without one shows: N for a whole number, PATH for a path, NAME... for several values,
    else the option's own name (``--target TARGET``); a choice keeps typer's ``<a|b>``."""
    shown = str(param.display_type(ctx)) if callable(getattr(param, "display_type", None)) else ""
    if not shown.startswith("<") or "|" in shown:
        return None
    name = param.name.upper()
    if shown.startswith("<list["):
        return f"{name[:-1] if name.endswith('S') else name}..."
    return {"<int>": "N", "<path>": "PATH"}.get(shown, name)


def _short_help(command: Any) -> str:
    """A command's first docstring paragraph, whole (click cuts it at 45 characters with '...')."""
    text = command.short_help or command.help or ""
    return " ".join(text.split("\n\n")[0].split())


class Command(TyperCommand):
    """A typer command whose options follow the module's rules (several values per flag, no repeats) and whose
    help shows real metavars (``--seeds SEED...``, ``--epochs N``, ``RUN_DIR``) instead of Python types, and its
    summary uncut in the command list."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        for param in self.params:
            if _is_argument(param):
                if param.metavar is None:
                    param.metavar = param.name.upper() + ("..." if param.nargs != 1 else "")
                # no Python type (<list[Path]>) beside the name
                param.display_type_rich = lambda ctx=None: ""  # type: ignore[attr-defined]
            elif getattr(param, "metavar", "") is None and not getattr(param, "is_flag", True):
                param.metavar = _metavar(param, ctx)
        super().format_help(ctx, formatter)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for p in self.params:
            if _is_argument(p):
                name = p.metavar or p.name.upper()
                name += "..." if p.nargs != 1 and not name.endswith("...") else ""
                pieces.append(name if p.required else f"[{name}]")
        return pieces

    def get_short_help_str(self, limit: int = 45) -> str:
        return _short_help(self)

    def make_parser(self, ctx: Any) -> Any:
        parser = super().make_parser(ctx)
        seen: set[int] = set()
        for flag, option in [*parser._long_opt.items(), *parser._short_opt.items()]:
            if id(option) in seen:
                continue
            seen.add(id(option))
            if option.action == "append":
                _many_values(option)
            elif option.action == "store":
                _once(option, flag)
        return parser


class Group(TyperGroup):
    """A command group whose summary is not cut in its parent's command list."""

    def get_short_help_str(self, limit: int = 45) -> str:
        return _short_help(self)


class DefaultCommandGroup(Group):
    """A command group that runs :attr:`default_command` when the first argument is an option.

    ``musefusion sweep --data ...`` means ``musefusion sweep run --data ...``; ``sweep --help`` still shows the group.
    """

    default_command = "run"
    default_on_positional = False  # also when the first argument is not a command name (``runs ROOT``)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        first = args[0] if args else None
        if first is not None and first not in ("--help", "-h") and (
                _is_flag(first) or (self.default_on_positional and first not in self.commands)):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)
