"""``fanzha review``: officers confirm or correct consented review items in the terminal.

Confirmed items are exported to ``$FANZHA_HOME/reviewed.jsonl``, which ``fanzha train
--include-reviewed`` adds to the training set: the model learns from real misses without
anyone pasting messages into the repo.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.storage import Store
from classifier.knowledge import CATEGORY_IDS, Knowledge


def review_items(
    store: Store,
    knowledge: Knowledge,
    ask: Callable[[str], str],
    say: Callable[[str], None],
) -> dict[str, int]:
    """Walk through pending items; *ask* reads one answer, *say* prints. Returns counts."""
    counts = {"confirmed": 0, "rejected": 0, "skipped": 0}
    items = store.pending_reviews()
    if not items:
        say("No review items waiting.")
        return counts
    menu = "  ".join(f"{n}={cid}" for n, cid in enumerate(CATEGORY_IDS, 1))
    for position, item in enumerate(items, 1):
        suggested = item["suggested_label"] or item["model_label"]
        if suggested not in CATEGORY_IDS:
            suggested = "benign"
        say(f"\n[{position}/{len(items)}] model said {item['model_label']}, "
            f"resident suggested {item['suggested_label']}")
        say(item["text"])
        say(f"Enter = confirm {suggested} ({knowledge.categories[suggested].name}); number = another label; "
            f"r = reject; s = skip; q = quit\n{menu}")
        answer = ask("> ").strip().lower()
        if answer == "q":
            break
        if answer == "s":
            counts["skipped"] += 1
            continue
        if answer == "r":
            store.resolve_review(item["id"], None)
            counts["rejected"] += 1
            continue
        label = suggested
        if answer.isdigit() and 1 <= int(answer) <= len(CATEGORY_IDS):
            label = CATEGORY_IDS[int(answer) - 1]
        elif answer in CATEGORY_IDS:
            label = answer
        elif answer:
            say("Not understood; skipped.")
            counts["skipped"] += 1
            continue
        store.resolve_review(item["id"], label)
        counts["confirmed"] += 1
    return counts
