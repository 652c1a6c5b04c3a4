"""``python -m bot`` runs the fanzha command (same as the console script)."""

from bot.cli import main

main()
