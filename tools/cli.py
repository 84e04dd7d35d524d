"""The measurement command line: ``python -m tools <command>``.

Understanding figures (``eval``, ``eval-clinc``), threshold tuning (``tune``) and the
benchmarks (``bench``, ``bench-email``, ``bench-telegram``, ``bench-model-swap``), and the documentation's
screenshots (``screenshots console``, ``screenshots stats``). They start their own
stacks and stand-ins and write to results/; none of them is part of running the
assistant, which is ``python -m bot``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bot.settings import PROJECT_ROOT


def _eval(args: argparse.Namespace) -> int:
    from tools.evaluation.understanding import main

    return main(heldout=Path(args.heldout), with_benchmark=not args.no_benchmark, out_dir=Path(args.out))


def _eval_clinc(args: argparse.Namespace) -> int:
    from tools.evaluation.clinc150 import main

    return main(variants=args.variants.split(","), epochs=args.epochs, out_dir=Path(args.out))


def _tune(args: argparse.Namespace) -> int:
    from tools.evaluation.tuning import main

    return main(
        dev_set=Path(args.dev), write=not args.dry_run,
        scores_out=Path(args.scores) if args.scores else None,
        scores_in=Path(args.from_scores) if args.from_scores else None,
    )


def _tune_language(args: argparse.Namespace) -> int:
    from tools.evaluation.languages import tune_main

    return tune_main(args.language, Path(args.dev) if args.dev else None, write=not args.dry_run, slack=args.slack)


def _eval_language(args: argparse.Namespace) -> int:
    from tools.evaluation.languages import eval_main

    return eval_main(Path(args.out), args.languages.split(",") if args.languages else None,
                     with_end_to_end=not args.no_end_to_end)


def _bench_scale(args: argparse.Namespace) -> int:
    from tools.bench.scale import DEFAULT_PG_ADMIN, DEFAULT_REDIS, main

    return main(args.postgres_admin_url or DEFAULT_PG_ADMIN, args.redis_url or DEFAULT_REDIS)


def _bench(args: argparse.Namespace) -> int:
    from tools.bench.speed import main

    return main(requests=args.requests, out_dir=Path(args.out), startup=not args.no_startup)


def _bench_email(args: argparse.Namespace) -> int:
    from tools.bench.email import main

    return main(emails=args.emails, crash_emails=args.crash_emails, kills=args.kills, out_dir=Path(args.out))


def _bench_telegram(args: argparse.Namespace) -> int:
    from tools.bench.telegram import main

    return main(
        messages=args.messages,
        concurrency=[int(c) for c in args.concurrency.split(",")],
        poll_intervals=[float(p) for p in args.poll_intervals.split(",")],
        poll_messages=args.poll_messages,
        out_dir=Path(args.out),
    )


def _bench_model_swap(args: argparse.Namespace) -> int:
    from tools.bench.model_swap import main

    return main(senders=args.senders, pause=args.pause)


def _screenshots_console(args: argparse.Namespace) -> int:
    from tools.screenshots.console import take_screenshots

    take_screenshots(args.out)
    return 0


def _screenshots_stats(args: argparse.Namespace) -> int:
    from tools.screenshots.stats import main

    return main(out=Path(args.out))


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="measure accuracy, escalation recall and wrong answers")
    p.add_argument("--heldout", default=str(PROJECT_ROOT / "evaluation" / "heldout.tsv"))
    p.add_argument("--no-benchmark", action="store_true", help="skip the covid_q_govfaq benchmark")
    p.add_argument("--out", default=str(PROJECT_ROOT / "results"))
    p.set_defaults(func=_eval)

    c = subparsers.add_parser("eval-clinc", help="CLINC150 in-scope accuracy and OOS recall (trains on CLINC150: slow)")
    c.add_argument("--variants", default="oos_intent,threshold", help="oos_intent and/or threshold, comma-separated")
    c.add_argument("--epochs", type=int, help="DIET epochs instead of config.yml's (reported in the results)")
    c.add_argument("--out", default=str(PROJECT_ROOT / "results"))
    c.set_defaults(func=_eval_clinc)

    t = subparsers.add_parser("tune", help="choose the answer/escalate thresholds on the dev set")
    t.add_argument("--dev", default=str(PROJECT_ROOT / "evaluation" / "dev.tsv"))
    t.add_argument("--dry-run", action="store_true", help="print, do not write config.yml")
    t.add_argument("--scores", help="also write the recorded NLU scores to this JSON file")
    t.add_argument("--from-scores", help="replay scores written by --scores instead of training and recording")
    t.set_defaults(func=_tune)

    tl = subparsers.add_parser("tune-language", help="choose a second language's lexical thresholds on "
                               "evaluation/dev_<lang>.tsv; writes knowledge_base/languages/<lang>.calibration.json")
    tl.add_argument("language", help="ISO 639-1 code, e.g. es")
    tl.add_argument("--dev", help="the development set (default evaluation/dev_<lang>.tsv; never the held-out set)")
    tl.add_argument("--dry-run", action="store_true", help="print, do not write the calibration file")
    tl.add_argument("--slack", type=float, default=0.0, help="self-served share that may be given up for fewer "
                    "questions (e.g. 0.03: the most answered at once within 3 points of the most self-served)")
    tl.set_defaults(func=_tune_language)

    el = subparsers.add_parser("eval-language", help="second-language figures, German deepset_covid_govfaq and "
                               "language detection: results/languages.md")
    el.add_argument("--languages", help="comma-separated (default: every knowledge_base/languages/<lang>.yml)")
    el.add_argument("--out", default=str(PROJECT_ROOT / "results"))
    el.add_argument("--no-end-to-end", action="store_true",
                    help="skip the run through the product (API, Rasa, the trained model): the lexical model alone")
    el.set_defaults(func=_eval_language)

    b = subparsers.add_parser("bench", help="latency and throughput: onnxruntime vs numpy encoders, full path vs Rasa's bare webhook")
    b.add_argument("--requests", type=int, default=400, help="messages per measurement")
    b.add_argument("--out", default=str(PROJECT_ROOT / "results"))
    b.add_argument("--no-startup", action="store_true", help="skip the `make run` start-up measurement")
    b.set_defaults(func=_bench)

    sc_ = subparsers.add_parser("bench-scale", help="1 vs 2 Rasa processes on PostgreSQL + Redis, and a SIGKILL run")
    sc_.add_argument("--postgres-admin-url", default=None, help="a PostgreSQL URL allowed to create databases")
    sc_.add_argument("--redis-url", default=None)
    sc_.set_defaults(func=_bench_scale)
    e = subparsers.add_parser("bench-email", help="e-mail worker throughput (IMAP to SMTP reply) and the crash run")
    e.add_argument("--emails", type=int, default=300, help="e-mails for the throughput measurement")
    e.add_argument("--crash-emails", type=int, default=500, help="e-mails for the crash run (0: skip it)")
    e.add_argument("--kills", type=int, default=6, help="SIGKILLs during the crash run")
    e.add_argument("--out", default=str(PROJECT_ROOT / "results"))
    e.set_defaults(func=_bench_email)
    bt = subparsers.add_parser("bench-telegram", help="Telegram's per-message overhead over the generic API")
    bt.add_argument("--messages", type=int, default=200, help="messages per measurement")
    bt.add_argument("--concurrency", default="1,8", help="chats (and API senders) in parallel, comma-separated")
    bt.add_argument("--poll-intervals", default="0,1", help="polling worker pause between getUpdates calls, "
                    "seconds, comma-separated; the first is measured at every concurrency, the others at 1")
    bt.add_argument("--poll-messages", type=int, default=60, help="messages per measurement of the other poll intervals")
    bt.add_argument("--out", default=str(PROJECT_ROOT / "results"))
    bt.set_defaults(func=_bench_telegram)

    ms = subparsers.add_parser("bench-model-swap", help="approval of a KB proposal to the new answer through the API, "
                               "with messages sent throughout the model swap (one training: minutes)")
    ms.add_argument("--senders", type=int, default=2, help="threads posting a known KB question meanwhile")
    ms.add_argument("--pause", type=float, default=0.2, help="seconds each sender waits between messages")
    ms.set_defaults(func=_bench_model_swap)

    shots = subparsers.add_parser("screenshots", help="render the documentation's screenshots from demo data "
                                  "(needs Chromium)").add_subparsers(dest="page", required=True)
    sc = shots.add_parser("console", help="the queue and a ticket: queue.png and ticket.png")
    sc.add_argument("--out", default="docs/screenshots", help="folder for queue.png and ticket.png")
    sc.set_defaults(func=_screenshots_console)
    ss = shots.add_parser("stats", help="the statistics page over 30 days of seeded traffic: stats.png")
    ss.add_argument("--out", default=str(PROJECT_ROOT / "docs" / "screenshots" / "stats.png"))
    ss.set_defaults(func=_screenshots_stats)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools",
                                     description="Measurement tooling: evaluation, tuning, benchmarks and screenshots")
    add_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
