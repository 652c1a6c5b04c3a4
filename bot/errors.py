"""Known failures become one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import sys

import click


def run_cli(group: click.Group) -> None:
    from bot.config import ConfigError
    from bot.storage import StoreError
    from classifier.knowledge import KnowledgeError
    from classifier.model_store import ModelError

    try:
        group.main(standalone_mode=False, prog_name="fanzha")
    except click.exceptions.Abort:
        click.echo("", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (ConfigError, StoreError, KnowledgeError, ModelError) as exc:
        click.echo(f"fanzha: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
