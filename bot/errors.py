"""Known failures become one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import click


class StoreError(RuntimeError):
    """The database can't be used; the message says why and what to do.

    Defined here rather than in bot.storage so that catching it does not import sqlite-utils
    (a tenth of a second) in commands that never open the database, such as ``fanzha check``.
    """


def run_cli(group: click.Group) -> None:
    import click

    from bot.config import ConfigError
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
