"""The ``fanzha`` command: parse, make one library call, print. No logic of its own.

Heavy imports (scikit-learn, python-telegram-bot, the web server, OCR) happen inside the
command that needs them, so ``fanzha check`` answers in well under half a second.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import click

from bot.config import Settings
from bot.tips_cli import tips


class _Context:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def classifier(self, *, force_train: bool = False, extra=None):
        from classifier.engine import Classifier
        from classifier.knowledge import load_knowledge

        def announce() -> None:
            click.echo("正在根据训练数据构建模型，首次运行约需半分钟……", err=True)

        knowledge = load_knowledge()
        return Classifier.open(
            self.settings.model_dir,
            knowledge=knowledge,
            backend=self.settings.tokenizer,
            on_train=announce,
            force_train=force_train,
            extra=extra,
        )

    def store(self):
        from bot.storage import open_store

        return open_store(self.settings)

    def consultation(self, *, with_store: bool = False):
        from bot.consultation import Consultation
        from bot.session import Sessions

        settings = self.settings
        sessions = Sessions(settings.batch_window_seconds, settings.checks_per_minute)
        return Consultation(
            self.classifier(),
            log=self.store() if with_store else None,
            sessions=sessions,
            hash_key=settings.text_hash_key() if with_store else b"",
        )


pass_ctx = click.make_pass_decorator(_Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", type=click.Path(path_type=Path), envvar="FANZHA_HOME", help="Data folder (FANZHA_HOME).")
@click.option("--db", type=click.Path(path_type=Path), envvar="FANZHA_DB", help="Database file (FANZHA_DB).")
@click.version_option(package_name="fanzha")
@click.pass_context
def cli(ctx: click.Context, home: Path | None, db: Path | None) -> None:
    """fanzha: an anti-fraud consultation bot (反诈小助手).

    \b
    Examples:
      fanzha chat                      talk to the bot in this terminal
      fanzha check "您的快递丢失，我们双倍赔偿"
      fanzha classify < messages.jsonl > verdicts.jsonl
    """
    ctx.obj = _Context(Settings.from_env(home=home, db=db))  # ConfigError: exit 2 (bot.errors)


cli.add_command(tips)


def main() -> None:
    """Console-script entry: friendly errors instead of tracebacks for known failures."""
    from bot.errors import run_cli

    run_cli(cli)


@cli.command()
@pass_ctx
def chat(obj: _Context) -> None:
    """Talk to the bot in this terminal, offline (type /help or /quit).

    \b
    Example:
      fanzha chat
    """
    from bot.adapters.console import run_console

    run_console(obj.consultation(), obj.settings)


@cli.command()
@click.argument("text", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the full verdict as JSON.")
@click.option(
    "--image",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Read the text from a screenshot (needs fanzha[ocr]).",
)
@pass_ctx
def check(obj: _Context, text: str | None, as_json: bool, image: Path | None) -> None:
    """Check one message (argument or stdin) and print the bot's reply.

    \b
    Examples:
      fanzha check "我是公安局的，你涉嫌洗钱，请把钱转到安全账户"
      echo "验证码382910，请勿告诉他人" | fanzha check --json
      fanzha check --image screenshot.png
    """
    from bot.messages import IncomingMessage
    from bot.render import render_plain

    image_text = None
    if image is not None:
        from bot.ocr import OcrUnavailable, read_image_file

        try:
            image_text = read_image_file(image).text
        except OcrUnavailable as exc:
            raise click.ClickException(str(exc)) from None
    elif text is None:
        text = _read_stdin()
    consultation = obj.consultation()
    if as_json:
        verdict = consultation.classifier.classify(image_text if image_text is not None else text or "")
        click.echo(json.dumps(verdict.to_dict(), ensure_ascii=False, indent=2))
        return
    message = IncomingMessage(text or "", chat_id="cli", platform="cli", image_text=image_text)
    outcome = consultation.respond(message, time.monotonic())
    for reply in outcome.replies:
        click.echo(render_plain(reply, numbered_options=False))


def _read_stdin() -> str:
    if sys.stdin is None or sys.stdin.isatty():
        raise click.UsageError("give the message as an argument or pipe it in")
    data = sys.stdin.buffer.read()
    return data.decode("utf-8", errors="replace")


@cli.command()
@click.option(
    "--input", "input_path", type=click.Path(path_type=Path, dir_okay=False), help="JSONL file (default: stdin)."
)
@click.option(
    "--output", "output_path", type=click.Path(path_type=Path, dir_okay=False), help="Output file (default: stdout)."
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=lambda: os.cpu_count() or 1,
    show_default="the number of CPUs",
    help="Worker processes for large inputs (1: classify in this process).",
)
@pass_ctx
def classify(obj: _Context, input_path: Path | None, output_path: Path | None, jobs: int) -> None:
    """Classify JSON Lines ({"text": ...} per line), one verdict per line, same order.

    A bad line gets {"error": ...} in its place and never stops the batch.

    \b
    Example:
      fanzha classify < messages.jsonl > verdicts.jsonl
      fanzha classify --jobs 1 --input messages.jsonl --output verdicts.jsonl
    """
    from bot.batch import classify_stream

    classifier = obj.classifier()
    source = input_path.open("rb") if input_path else sys.stdin.buffer
    target = output_path.open("wb") if output_path else sys.stdout.buffer
    try:
        counts = classify_stream(classifier, source, target, jobs=jobs)
    finally:
        if input_path:
            source.close()
        if output_path:
            target.close()
    if counts["errors"]:
        click.echo(f"{counts['errors']} of {counts['lines']} lines were not valid input (see their 'error')", err=True)


@cli.command()
@click.option("--include-reviewed", is_flag=True, help="Also learn from confirmed review items (fanzha review).")
@click.option("--tokenizer", type=click.Choice(["rjieba", "jieba"]), envvar="FANZHA_TOKENIZER", help="Word segmenter.")
@pass_ctx
def train(obj: _Context, include_reviewed: bool, tokenizer: str | None) -> None:
    """Rebuild the model from intents.yaml and data/ now.

    \b
    Example:
      fanzha train --include-reviewed
    """
    if tokenizer:
        obj.settings = Settings.from_env(home=obj.settings.home, db=obj.settings.db, tokenizer=tokenizer)
    extra = []
    if include_reviewed:
        store = obj.store()
        try:
            count = store.export_reviewed(obj.settings.reviewed_path)
        finally:
            store.close()
        click.echo(f"including {count} reviewed messages", err=True)
        extra = [obj.settings.reviewed_path]
    started = time.perf_counter()
    classifier = obj.classifier(force_train=True, extra=extra)
    m = classifier.manifest
    click.echo(
        f"model {m['version']} trained in {time.perf_counter() - started:.1f}s on "
        f"{sum(m['examples'].values())} examples ({m['features']['words']} word and "
        f"{m['features']['chars']} character features), saved in {obj.settings.model_dir}"
    )


@cli.command()
@click.option(
    "--data",
    "data_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Labelled CSV (text/content + label columns) or JSONL to score the model on.",
)
@click.option("--label-map", help="Map your labels to category ids: 'refund=refund_scam,normal=benign' or a JSON file.")
@click.option("--folds", default=5, show_default=True, help="Cross-validation folds (without --data).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option("--errors", "show_errors", default=0, help="Print up to N misclassified messages.")
@pass_ctx
def evaluate(
    obj: _Context, data_path: Path | None, label_map: str | None, folds: int, as_json: bool, show_errors: int
) -> None:
    """Score the model: on your labelled data, or cross-validation plus the challenge set.

    \b
    Examples:
      fanzha evaluate
      fanzha evaluate --data cases.csv --label-map "刷单=rebate_task,正常=benign"
    """
    from bot.evaluation import run_evaluation

    result = run_evaluation(obj.classifier(), obj.settings, data_path, label_map, folds)
    if as_json:
        click.echo(json.dumps({k: v.to_dict() for k, v in result.reports.items()}, ensure_ascii=False, indent=2))
    else:
        for title, report in result.reports.items():
            from classifier.evaluate import format_report

            click.echo(format_report(title, report) + "\n")
        for title, errors in result.errors.items():
            for text, truth, predicted in errors[:show_errors]:
                click.echo(f"[{title}] true={truth} predicted={predicted}: {text[:120]!r}")


@cli.command()
@pass_ctx
def review(obj: _Context) -> None:
    """Confirm or correct messages residents agreed to share; confirmed ones feed training.

    \b
    Example:
      fanzha review && fanzha train --include-reviewed
    """
    from bot.review import review_items
    from classifier.knowledge import load_knowledge

    store = obj.store()
    try:
        counts = review_items(
            store,
            load_knowledge(),
            lambda prompt: click.prompt(prompt, default="", show_default=False, prompt_suffix=""),
            click.echo,
        )
        exported = store.export_reviewed(obj.settings.reviewed_path)
    finally:
        store.close()
    click.echo(
        f"confirmed {counts['confirmed']}, rejected {counts['rejected']}, skipped {counts['skipped']}; "
        f"{exported} confirmed items in {obj.settings.reviewed_path} (use: fanzha train --include-reviewed)"
    )


@cli.command()
@click.option("--days", default=30, show_default=True, help="How many days back.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--plot", type=click.Path(path_type=Path, dir_okay=False), help="Also draw the per-day chart (PNG).")
@pass_ctx
def stats(obj: _Context, days: int, as_json: bool, plot: Path | None) -> None:
    """Consultations per category and day, share flagged, feedback, red flags, campaigns.

    \b
    Examples:
      fanzha stats --days 7
      fanzha stats --json --plot last30.png
    """
    from bot.stats import collect_stats, format_stats, plot_stats

    store = obj.store()
    try:
        data = collect_stats(store, days)
    finally:
        store.close()
    click.echo(json.dumps(data, ensure_ascii=False, indent=2) if as_json else format_stats(data))
    if plot:
        plot_stats(data, plot)
        click.echo(f"chart written to {plot}", err=True)


@cli.command()
@click.option("--days", default=30, show_default=True, help="How many days back.")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False), help="File to write (default: stdout).")
@pass_ctx
def export(obj: _Context, days: int, fmt: str, output: Path | None) -> None:
    """Aggregate counts per day, category and risk for a police report (no personal data).

    \b
    Example:
      fanzha export --days 90 --format csv --output report.csv
    """
    from bot.stats import export_rows, export_text

    store = obj.store()
    try:
        text = export_text(export_rows(store, days), fmt)
    finally:
        store.close()
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


@cli.command()
@click.option("--chat", "chat_id", required=True, help="The chat or user id to forget.")
@click.option(
    "--platform",
    default="telegram",
    show_default=True,
    type=click.Choice(["telegram", "wechat", "wecom", "console", "cli"]),
)
@pass_ctx
def forget(obj: _Context, chat_id: str, platform: str) -> None:
    """Delete everything stored about a chat or person (what /forget does in the bot).

    \b
    Example:
      fanzha forget --chat 123456789 --platform telegram
    """
    store = obj.store()
    try:
        counts = store.forget_chat(platform, chat_id)
    finally:
        store.close()
    click.echo(f"deleted {sum(counts.values())} records about {platform}:{chat_id} ({counts})")


@cli.command()
@click.option("--host", help="Address to listen on (FANZHA_HOST; default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (FANZHA_PORT; default 8080).")
@pass_ctx
def serve(obj: _Context, host: str | None, port: int | None) -> None:
    """Run the web server: WeChat Official Account at /wechat, /healthz, and the Telegram
    webhook at /telegram when FANZHA_TELEGRAM_WEBHOOK_URL is set. Put it behind a reverse proxy.

    \b
    Example:
      FANZHA_WECHAT_TOKEN=... FANZHA_WECHAT_APPID=... FANZHA_WECHAT_AES_KEY=... \\
        fanzha serve --host 127.0.0.1 --port 8080
    """
    from bot.adapters.web import serve as run_server

    consultation = obj.consultation(with_store=True)
    try:
        run_server(
            obj.settings,
            consultation,
            consultation.log,
            host=host or obj.settings.host,
            port=port or obj.settings.port,
        )
    finally:
        consultation.log.close()


@cli.command()
@click.option("--base-url", help="Bot API server (FANZHA_TELEGRAM_BASE_URL), e.g. a self-hosted telegram-bot-api.")
@click.option(
    "--webhook-url",
    help="Public https URL Telegram posts updates to (FANZHA_TELEGRAM_WEBHOOK_URL) instead of long polling; "
    "served here at FANZHA_HOST:FANZHA_PORT/telegram.",
)
@pass_ctx
def telegram(obj: _Context, base_url: str | None, webhook_url: str | None) -> None:
    """Run the Telegram bot with the token in FANZHA_TELEGRAM_TOKEN (long polling by default).

    Stops cleanly on Ctrl-C or SIGTERM, after answering what it already received.

    \b
    Examples:
      FANZHA_TELEGRAM_TOKEN=123456:ABC... fanzha telegram
      fanzha telegram --base-url http://127.0.0.1:8081/bot
      fanzha telegram --webhook-url https://bot.example.org/telegram
    """
    import dataclasses

    from bot.adapters.telegram import run_telegram

    overrides = {"telegram_base_url": base_url, "telegram_webhook_url": webhook_url}
    settings = dataclasses.replace(obj.settings, **{k: v for k, v in overrides.items() if v})
    if not settings.telegram_token:
        raise click.ClickException("set FANZHA_TELEGRAM_TOKEN to the token @BotFather gave you")
    obj.settings = settings
    consultation = obj.consultation(with_store=True)
    try:
        run_telegram(settings, consultation, consultation.log)
    finally:
        consultation.log.close()


@cli.command()
@click.option("--quick", is_flag=True, help="A reduced run (under a minute) that prints the JSON summary.")
@click.option(
    "--output", type=click.Path(path_type=Path, dir_okay=False), help="Result file (default: bench/results/)."
)
def bench(quick: bool, output: Path | None) -> None:
    """Measure speed, memory and the bots under load (from a repo checkout; see BENCHMARKS.md).

    \b
    Examples:
      fanzha bench --quick
      fanzha bench --output results.json
    """
    import subprocess

    root = Path(__file__).resolve().parents[1]
    if not (root / "bench" / "runner.py").is_file() or not (root / "tests" / "fakes").is_dir():
        raise click.ClickException(
            "fanzha bench runs from a repo checkout: the bench/ package and the test stand-ins are not "
            "installed with fanzha. Clone the repository, `pip install -e .` there, then run `fanzha bench`."
        )
    args = [sys.executable, "-m", "bench", *(["--quick"] if quick else [])]
    if output:
        args += ["--output", str(output)]
    sys.exit(subprocess.call(args, cwd=root))
