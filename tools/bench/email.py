"""`python -m tools bench-email`: the e-mail worker's end-to-end throughput, and the crash run.

Both put N e-mails into a city mailbox on the local Dovecot (IMAP APPEND), run
the real worker command (`python -m bot channel email`) against the trained
assistant, and wait until every e-mail has its reply accepted by the SMTP
server. Throughput = e-mails / seconds from the worker's start to the last
reply sent (worker start-up included). The crash run SIGKILLs the worker at
random moments several times, restarts it, and counts the replies in each
citizen's mailbox. The crash test (tests/channels/email/test_email_crash.py)
calls the same ``crash_run``.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from email.utils import make_msgid
from pathlib import Path

from sqlalchemy import func, select

from bot.settings import PROJECT_ROOT

TEXTS = [
    "When is my bin collected?",
    "How do I get a parking permit for my street?",
    "The staff at the counter were rude to me, I want to complain",
    "There is a big pothole on Mill Road that damaged my bike",
    "What are the opening hours of the town hall?",
]


@dataclass(frozen=True)
class Target:
    """Where the worker sends its questions and keeps its records."""

    database_url: str
    rasa_url: str
    kb_dir: Path


def _new_account(servers, run: str) -> tuple[str, str]:  # noqa: ANN001 - MailServers
    from tools.standins.email import DOMAIN

    account, password = f"city-{run}@{DOMAIN}", uuid.uuid4().hex
    servers.add_user(account, password)
    return account, password


def worker_env(servers, account: str, password: str, target: Target) -> dict[str, str]:  # noqa: ANN001
    env = dict(os.environ)
    env.update(servers.settings_env())
    env.update(
        {
            "PYTHONPATH": str(PROJECT_ROOT),
            "CRM_EMAIL_ADDRESS": account,
            "CRM_IMAP_USER": account,
            "CRM_IMAP_PASSWORD": password,
            "CRM_SMTP_USER": account,
            "CRM_SMTP_PASSWORD": password,
            "CRM_DATABASE_URL": target.database_url,
            "CRM_API_KEYS": "email-bench-" + uuid.uuid4().hex,
            "CRM_RASA_URL": target.rasa_url,
            "CRM_KB_DIR": str(target.kb_dir),
            "CRM_IMAP_POLL_SECONDS": "1",
            # Short timeouts keep the delivery lease (6 x timeout) short, so a reply left
            # "sending" by a killed worker is retried after 12 s rather than minutes.
            "CRM_NETWORK_TIMEOUT_SECONDS": "2",
        }
    )
    return env


def load_emails(servers, account: str, password: str, count: int, run: str) -> dict[str, str]:  # noqa: ANN001
    """APPEND ``count`` e-mails from as many citizens; returns Message-ID -> citizen address."""
    from email.message import EmailMessage

    from imapclient import IMAPClient

    from tools.standins.email import DOMAIN

    originals: dict[str, str] = {}
    with IMAPClient("127.0.0.1", port=servers.dovecot.imaps_port, ssl=True,
                    ssl_context=servers.client_context(), timeout=30) as client:
        client.login(account, password)
        for index in range(count):
            sender = f"c{index}-{run}@{DOMAIN}"
            mail = EmailMessage()
            mail["From"], mail["To"], mail["Subject"] = sender, account, f"Question {index}"
            mail["Message-ID"] = make_msgid(idstring=f"{run}.{index}", domain=DOMAIN)
            mail.set_content(TEXTS[index % len(TEXTS)])
            client.append("INBOX", bytes(mail))
            originals[mail["Message-ID"]] = sender
    return originals


def _start(env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "bot", "channel", "email"], cwd=PROJECT_ROOT, env=env,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def progress(sessions, account: str) -> tuple[int, int, int]:  # noqa: ANN001
    """(stored, handled, replies sent) for the mailbox of ``account``."""
    from bot.channels.email.models import EmailInbound, EmailMailbox
    from bot.store.models import Message

    with sessions() as session:
        mailbox_id = session.scalar(select(EmailMailbox.id).where(EmailMailbox.account.like(f"{account}@%")))
        if mailbox_id is None:
            return 0, 0, 0
        stored = session.scalar(select(func.count(EmailInbound.id)).where(EmailInbound.mailbox_id == mailbox_id))
        handled = session.scalar(
            select(func.count(EmailInbound.id)).where(
                EmailInbound.mailbox_id == mailbox_id, EmailInbound.status != "received"
            )
        )
        sent = session.scalar(
            select(func.count(Message.id))
            .join(EmailInbound, EmailInbound.reply_id == Message.id)
            .where(EmailInbound.mailbox_id == mailbox_id, Message.delivery_status == "sent")
        )
        return stored, handled, sent


def _wait_answered(proc: subprocess.Popen, sessions, account: str, count: int, log: Path,  # noqa: ANN001
                   timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the e-mail worker exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        if progress(sessions, account) == (count, count, count):
            return
        time.sleep(0.2)
    raise TimeoutError(f"not all {count} e-mails answered in {timeout:.0f} s: {progress(sessions, account)}")


def replies_per_email(servers, originals: dict[str, str]) -> Counter:  # noqa: ANN001
    """How many replies each original got, read from the citizens' mailboxes (In-Reply-To)."""
    import email
    import email.policy

    counts: Counter = Counter()
    for sender in set(originals.values()):
        if not servers.dovecot.mail_home(sender).exists():
            continue
        box = servers.dovecot.maildir(sender)
        for key in box.keys():
            mail = email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
            counts[(mail["In-Reply-To"] or "").strip()] += 1
    return Counter(counts[message_id] for message_id in originals)


def throughput_run(servers, target: Target, emails: int, work: Path) -> dict:  # noqa: ANN001
    from bot.store.db import session_factory

    run = uuid.uuid4().hex[:6]
    account, password = _new_account(servers, run)
    originals = load_emails(servers, account, password, emails, run)
    sessions = session_factory(target.database_url)
    log = work / f"worker-{run}.log"
    started = time.monotonic()
    proc = _start(worker_env(servers, account, password, target), log)
    try:
        _wait_answered(proc, sessions, account, emails, log, timeout=60 + emails * 3)
        elapsed = time.monotonic() - started
    finally:
        _stop(proc)
    per_email = replies_per_email(servers, originals)
    return {
        "emails": emails,
        "seconds": round(elapsed, 1),
        "emails_per_second": round(emails / elapsed, 2),
        "replies_per_email": dict(per_email),
    }


def crash_run(servers, target: Target, *, emails: int, kills: int, work: Path,  # noqa: ANN001
              seed: int | None = None) -> dict:
    """Kill the worker ``kills`` times at random moments, then let it finish; count replies."""
    from bot.channels.email.models import EmailInbound, EmailMailbox
    from bot.store.db import session_factory
    from bot.store.models import Message

    rng = random.Random(seed)
    run = uuid.uuid4().hex[:6]
    account, password = _new_account(servers, run)
    originals = load_emails(servers, account, password, emails, run)
    env = worker_env(servers, account, password, target)
    sessions = session_factory(target.database_url)
    log = work / f"worker-crash-{run}.log"
    at_kill: list[list[int]] = []
    started = time.monotonic()
    for _ in range(kills):
        # Kill while it works: after a random number (1-15) of further e-mails were handled,
        # plus a random fraction of one e-mail's time, so kills land in fetching, storing,
        # classifying, queueing and sending alike.
        handled_before = progress(sessions, account)[1]
        target_handled = min(emails, handled_before + rng.randint(1, 15))
        proc = _start(env, log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and progress(sessions, account)[1] < target_handled:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.3))
        _stop(proc, signal.SIGKILL)
        at_kill.append(list(progress(sessions, account)))
    proc = _start(env, log)
    try:
        _wait_answered(proc, sessions, account, emails, log, timeout=120 + emails * 3)
        elapsed = time.monotonic() - started
    finally:
        _stop(proc)
    with sessions() as session:
        mailbox_id = session.scalar(select(EmailMailbox.id).where(EmailMailbox.account.like(f"{account}@%")))
        rows = session.execute(
            select(EmailInbound.message_key, EmailInbound.outcome).where(EmailInbound.mailbox_id == mailbox_id)
        ).all()
        retried = session.scalar(
            select(func.count(Message.id))
            .join(EmailInbound, EmailInbound.reply_id == Message.id)
            .where(EmailInbound.mailbox_id == mailbox_id, Message.delivery_attempts > 1)
        )
        from_copy = sum(
            1
            for meta in session.scalars(
                select(Message.meta)
                .join(EmailInbound, EmailInbound.reply_id == Message.id)
                .where(EmailInbound.mailbox_id == mailbox_id)
            )
            if (meta or {}).get("email_recovered_from_copy")
        )
    stored_keys = Counter(key for key, _outcome in rows)
    return {
        "emails": emails,
        "kills": kills,
        "progress_at_each_kill": at_kill,  # [stored, handled, replies sent]
        "stored": len(stored_keys),
        "stored_twice": sum(1 for n in stored_keys.values() if n > 1),
        "missing": sorted(set(originals) - set(stored_keys)),
        "outcomes": dict(Counter(outcome for _key, outcome in rows)),
        "replies_per_email": dict(replies_per_email(servers, originals)),
        "replies_retried_after_a_kill": retried,
        "retries_found_already_sent": from_copy,
        "seconds_total": round(elapsed, 1),
    }


def main(*, emails: int, crash_emails: int, kills: int, out_dir: Path) -> int:
    import json
    import tempfile
    from datetime import datetime, timezone

    from bot.stack import Stack, StackConfig
    from bot.training import train
    from tools.evaluation.understanding import machine_description
    from tools.standins.email import start_mail_servers

    model = train()
    with tempfile.TemporaryDirectory(prefix="crm-bench-email-") as tmp, start_mail_servers() as servers:
        work = Path(tmp)
        config = StackConfig.throwaway(model, work)
        target = Target(config.database_url, config.rasa_url, config.kb_dir)
        with Stack(config):
            throughput_run(servers, target, 20, work)  # warm-up: Rasa's first calls load lazily
            throughput = throughput_run(servers, target, emails, work)
            print("throughput:", json.dumps(throughput), flush=True)
            crash = crash_run(servers, target, emails=crash_emails, kills=kills, work=work) if crash_emails else None
            if crash:
                print("crash run:", json.dumps(crash), flush=True)

    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        "# E-mail channel: measured figures",
        "",
        f"Produced by `python -m tools bench-email --emails {emails} --crash-emails {crash_emails} --kills {kills}` "
        f"on {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}.",
        f"Machine: {machine_description()}. Model: `{model.name}`. SQLite store; Dovecot {_dovecot_version()} "
        "(IMAP over TLS, IDLE) and an aiosmtpd SMTP server (STARTTLS + AUTH) delivering over LMTP, all on loopback.",
        "",
        "## Throughput, IMAP to SMTP reply",
        "",
        f"{emails} e-mails (one question each, from {emails} citizens, the texts cycling through FAQ questions,",
        "complaints and problem reports) appended to the city's inbox, then the worker started",
        "(`python -m bot channel email`); timed from its start to the last reply accepted by the SMTP server.",
        "Each e-mail: fetch, store, quote-stripping and loop checks, one Rasa turn with the trained model",
        "(actions write to the store), the reply queued and sent, and our own copy filed in Sent.",
        "",
        "| e-mails | seconds | e-mails per second | replies per e-mail |",
        "|---|---|---|---|",
        f"| {throughput['emails']} | {throughput['seconds']} | **{throughput['emails_per_second']}** | "
        f"{_dist(throughput['replies_per_email'])} |",
        "",
    ]
    if crash:
        lines += [
            "## Crash run",
            "",
            f"{crash['emails']} e-mails; the worker SIGKILLed {crash['kills']} times at random moments while "
            "working (after 1 to 15 further e-mails were handled, plus 0 to 0.3 s) and restarted, then left "
            "to finish.",
            "",
            f"- stored: {crash['stored']} of {crash['emails']} (stored twice: {crash['stored_twice']}, "
            f"missing: {len(crash['missing'])})",
            f"- replies per e-mail, counted in the citizens' mailboxes: {_dist(crash['replies_per_email'])}",
            f"- outcomes: {crash['outcomes']}",
            f"- progress at each kill [stored, handled, replies sent]: {crash['progress_at_each_kill']}",
            f"- replies whose send was interrupted and retried: {crash['replies_retried_after_a_kill']}, "
            f"of which found already accepted (our copy present) and not sent again: "
            f"{crash['retries_found_already_sent']}",
            f"- total time including the kills and restarts: {crash['seconds_total']} s",
            "",
            "The same run is the test `tests/channels/email/test_email_crash.py` (part of the normal suite).",
            "Random kills rarely land inside the few milliseconds of an SMTP send; that case (the server",
            "accepted the reply, the worker died before recording it) is tested deterministically in",
            "`test_email_transport.py::test_a_retry_after_a_crash_in_mid_send_does_not_send_twice`.",
            "",
        ]
    (out_dir / "email.md").write_text("\n".join(lines), encoding="utf-8")
    print(f"results written to {out_dir / 'email.md'}")
    return 0


def _dist(counts: dict) -> str:
    """{1: 500} -> "500 e-mails with 1 reply"."""
    return ", ".join(
        f"{n} e-mails with {k} repl{'y' if int(k) == 1 else 'ies'}"
        for k, n in sorted(counts.items(), key=lambda item: int(item[0]))
    )


def _dovecot_version() -> str:
    try:
        return subprocess.run(["dovecot", "--version"], capture_output=True, text=True, timeout=10).stdout.split()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "(version unknown)"
