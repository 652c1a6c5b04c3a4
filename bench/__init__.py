"""The benchmark suite: ``python -m bench`` (or ``fanzha bench``) from a repo checkout.

One module per job: classifier timings (:mod:`bench.classifier_timings`), the textbook
baseline (:mod:`bench.baseline`), the Telegram bot under load (:mod:`bench.telegram_load`),
the WeChat endpoint under load (:mod:`bench.wechat_load`), the daily broadcast
(:mod:`bench.broadcast_load`), screenshot reading (:mod:`bench.ocr_section`, wrapping
:mod:`bench.ocr_bench`), and the result file and table (:mod:`bench.report`).
"""
