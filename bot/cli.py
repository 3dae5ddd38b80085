"""The ``corb`` command. Each group of subcommands lives in its own module and registers itself here."""

from __future__ import annotations

import importlib

import click

# Modules that add commands to ``main`` (each defines ``register(main)``).
COMMAND_MODULES: list[str] = [
    "bot.commands_local",  # serve, runtime, db, users, ingest, replay
    "bot.commands_phone",  # sms, outbox: a phone in the terminal
    "bot.commands_cameras",  # cameras add/list/run (the camera agent)
    "bot.commands_admin",  # admin create/list/delete, api token create/list/revoke
    "bot.commands_deploy",  # deploy STAGE [--dry-run]: what Zappa does not create on AWS
]


class _Main(click.Group):
    """``corb``: a setting Corb cannot use is one clear line (and exit status 1), not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        from cloud.config import ConfigError

        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            raise click.ClickException(f"configuration: {exc}") from None


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"], "terminal_width": 120,
                                          "max_content_width": 120})
def main() -> None:
    """Corb: SMS chat-ops for a building with cameras."""


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(main)
