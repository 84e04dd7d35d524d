"""Real mail servers on loopback for the tests and the e-mail benchmark.

Dovecot (Debian's ``dovecot-imapd`` + ``dovecot-lmtpd``, installed by
``scripts/install-mail-servers.sh``) runs in the foreground as our child with a
generated config: passwd-file authentication, Maildir, TLS with a certificate
made on the spot, IMAP with IDLE (STARTTLS and implicit TLS listeners) and
LMTP. In front of it an SMTP server (aiosmtpd) offers STARTTLS and implicit
TLS, requires AUTH, and delivers every accepted message into Dovecot over
LMTP before it answers 250, the way a small Postfix + Dovecot LMTP site
behaves. aiosmtpd rather than Postfix: Postfix wants a system queue, its own
users, chroot and a daemon; a second instance per test session on a free port
is fragile, while aiosmtpd is a maintained SMTP implementation that starts in
milliseconds inside the test process.

Every port is free-at-start on 127.0.0.1, every file lives in a temporary
directory of the session; nothing is left behind by ``stop()``.

Used only by tests and ``python -m tools bench-email``: aiosmtpd is a dev
dependency, imported when the SMTP server starts.
"""

from __future__ import annotations

import asyncio
import mailbox
import os
import pwd
import shutil
import smtplib
import ssl
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from bot.stack import free_port

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
INSTALLER = "scripts/install-mail-servers.sh"
DOMAIN = "example.test"


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost/127.0.0.1; clients trust it as their CA file."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )
    key.chmod(0o600)
    return cert, key


@dataclass
class Dovecot:
    directory: Path
    cert: Path
    key: Path
    users: dict[str, str]
    imap_port: int = field(default_factory=free_port)
    imaps_port: int = field(default_factory=free_port)
    lmtp_port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    def _accounts(self) -> tuple[str, str, str, str, str]:
        """(login user, internal user, group, mail uid, mail gid): Dovecot's own users when root."""
        if os.geteuid() == 0:
            dovecot, login = pwd.getpwnam("dovecot"), pwd.getpwnam("dovenull")
            return login.pw_name, dovecot.pw_name, str(dovecot.pw_gid), str(dovecot.pw_uid), str(dovecot.pw_gid)
        me = pwd.getpwuid(os.geteuid())
        return me.pw_name, me.pw_name, str(me.pw_gid), str(me.pw_uid), str(me.pw_gid)

    def mail_home(self, address: str) -> Path:
        return self.directory / "mail" / address.lower()

    def start(self, timeout: float = 20.0) -> "Dovecot":
        if not Path(DOVECOT).exists():
            raise RuntimeError(f"dovecot is not installed; run `bash {INSTALLER}` (the test setup does)")
        login_user, internal_user, _group, uid, gid = self._accounts()
        (self.directory / "mail").mkdir(parents=True, exist_ok=True)
        (self.directory / "state").mkdir(exist_ok=True)
        if os.geteuid() == 0:
            os.chown(self.directory / "mail", int(uid), int(gid))
        with open(self.directory / "users", "w") as users:
            for user, password in self.users.items():
                users.write(f"{user}:{{PLAIN}}{password}\n")
        config = self.directory / "dovecot.conf"
        config.write_text(
            f"""
protocols = imap lmtp
listen = 127.0.0.1
base_dir = {self.directory}/run
state_dir = {self.directory}/state
log_path = {self.directory}/dovecot.log
instance_name = crm-test-{self.imap_port}
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_user if os.geteuid() != 0 else 'dovecot'}
first_valid_uid = 1
mail_uid = {uid}
mail_gid = {gid}
ssl = yes
ssl_cert = <{self.cert}
ssl_key = <{self.key}
disable_plaintext_auth = yes
auth_mechanisms = plain login
auth_username_format = %Lu
mail_location = maildir:~/Maildir
mail_fsync = never
recipient_delimiter = +
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {self.directory}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={self.directory}/mail/%Lu allow_all_users=yes
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = create
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.imaps_port}
    ssl = yes
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {self.lmtp_port}
  }}
}}
service anvil {{
  chroot =
}}
service imap {{
  process_limit = 200
}}
protocol imap {{
  mail_max_userip_connections = 100
}}
"""
        )
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.directory / "dovecot.stderr", "ab"),
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self._log_tail()}")
            if all(_listening(port) for port in (self.imap_port, self.imaps_port, self.lmtp_port)):
                return self
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"dovecot did not listen in time: {self._log_tail()}")

    def _log_tail(self) -> str:
        text = ""
        for name in ("dovecot.stderr", "dovecot.log"):
            path = self.directory / name
            if path.exists():
                text += path.read_text(errors="replace")[-3000:]
        return text

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()
        self.process = None

    def deliver(self, recipients: list[str], raw: bytes, sender: str = "") -> dict:
        """Deliver over LMTP, one transaction per recipient (LMTP answers DATA once per
        recipient, which smtplib only reads for a single one); returns the refused ones."""
        refused = {}
        with smtplib.LMTP("127.0.0.1", self.lmtp_port, timeout=30) as lmtp:
            for recipient in recipients:
                try:
                    lmtp.sendmail(sender, [recipient], raw)
                except smtplib.SMTPRecipientsRefused as exc:
                    refused.update(exc.recipients)
                except smtplib.SMTPResponseException as exc:
                    refused[recipient] = (exc.smtp_code, exc.smtp_error)
                    lmtp.rset()
        return refused

    def maildir(self, address: str, folder: str | None = None) -> mailbox.Maildir:
        """A user's mailbox read straight from disk (what the citizen would see)."""
        path = self.mail_home(address) / "Maildir"
        if folder:
            path = path / f".{folder}"
        return mailbox.Maildir(path, factory=None, create=False)


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class SmtpServer:
    """aiosmtpd with STARTTLS (one port) and implicit TLS (another), AUTH required,
    delivering through Dovecot's LMTP before answering."""

    def __init__(self, dovecot: Dovecot, users: dict[str, str], cert: Path, key: Path) -> None:
        self.dovecot = dovecot
        self.users = users
        self.cert, self.key = cert, key
        self.starttls_port = free_port()
        self.tls_port = free_port()
        self.accepted = 0
        self._controllers: list = []

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def start(self) -> "SmtpServer":
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        server = self

        def authenticate(_server, _session, _envelope, _mechanism, auth_data) -> AuthResult:
            if isinstance(auth_data, LoginPassword):
                user = auth_data.login.decode("utf-8", "replace").lower()
                password = auth_data.password.decode("utf-8", "replace")
                if server.users.get(user) == password:
                    return AuthResult(success=True)
            return AuthResult(success=False, handled=False)

        class Handler:
            async def handle_DATA(self, _server, _session, envelope) -> str:
                loop = asyncio.get_running_loop()
                try:
                    refused = await loop.run_in_executor(
                        None, server.dovecot.deliver, list(envelope.rcpt_tos), envelope.original_content,
                        envelope.mail_from or "",
                    )
                except smtplib.SMTPRecipientsRefused:
                    return "550 5.1.1 no such recipient"
                except (OSError, smtplib.SMTPException) as exc:
                    return f"451 4.3.0 local delivery failed: {type(exc).__name__} {exc}"[:200]
                if refused and len(refused) == len(envelope.rcpt_tos):
                    return "451 4.3.0 local delivery failed"
                server.accepted += 1
                return "250 2.0.0 delivered"

        common = dict(
            hostname="127.0.0.1",
            authenticator=authenticate,
            auth_required=True,
            data_size_limit=60 * 1024 * 1024,
        )
        starttls = Controller(
            Handler(), port=self.starttls_port, tls_context=self._context(), require_starttls=True, auth_require_tls=True,
            **common,
        )
        # The whole connection is TLS here; aiosmtpd only counts STARTTLS as "TLS" for AUTH,
        # and warns about it on every connection.
        warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS", category=UserWarning)
        implicit = Controller(
            Handler(), port=self.tls_port, ssl_context=self._context(), auth_require_tls=False, **common
        )
        for controller in (starttls, implicit):
            controller.start()
            self._controllers.append(controller)
        return self

    def stop(self) -> None:
        for controller in self._controllers:
            try:
                controller.stop()
            except Exception:  # already stopped
                pass
        self._controllers.clear()


@dataclass
class MailServers:
    """Dovecot + SMTP for one city mailbox; ``settings_env()`` points the worker at them."""

    directory: Path
    city: str
    city_password: str
    dovecot: Dovecot
    smtp: SmtpServer
    cert: Path

    def settings_env(self, *, imap_security: str = "tls", smtp_security: str = "starttls") -> dict[str, str]:
        imap_port = self.dovecot.imaps_port if imap_security == "tls" else self.dovecot.imap_port
        smtp_port = self.smtp.tls_port if smtp_security == "tls" else self.smtp.starttls_port
        return {
            "CRM_EMAIL_ADDRESS": self.city,
            "CRM_IMAP_HOST": "127.0.0.1",
            "CRM_IMAP_PORT": str(imap_port),
            "CRM_IMAP_SECURITY": imap_security,
            "CRM_IMAP_USER": self.city,
            "CRM_IMAP_PASSWORD": self.city_password,
            "CRM_SMTP_HOST": "127.0.0.1",
            "CRM_SMTP_PORT": str(smtp_port),
            "CRM_SMTP_SECURITY": smtp_security,
            "CRM_SMTP_USER": self.city,
            "CRM_SMTP_PASSWORD": self.city_password,
            "CRM_EMAIL_TLS_CA_FILE": str(self.cert),
        }

    def add_user(self, address: str, password: str) -> None:
        """Another mailbox that can log in (IMAP and SMTP AUTH); any address can receive mail."""
        address = address.lower()
        self.dovecot.users[address] = password
        self.smtp.users[address] = password
        with open(self.dovecot.directory / "users", "a") as users:
            users.write(f"{address}:{{PLAIN}}{password}\n")

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    def stop(self) -> None:
        self.smtp.stop()
        self.dovecot.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> "MailServers":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_mail_servers(city: str = f"city@{DOMAIN}", password: str | None = None) -> MailServers:
    """Start Dovecot and the SMTP server in a new temporary directory."""
    import secrets

    password = password or secrets.token_urlsafe(16)
    directory = Path(tempfile.mkdtemp(prefix="crm-mail-"))
    # Dovecot's unprivileged processes must reach their sockets and the Maildirs below.
    directory.chmod(0o755)
    try:
        cert, key = make_certificate(directory)
        if os.geteuid() == 0:
            # Dovecot reads the key as root before dropping privileges; the files stay private.
            pass
        users = {city.lower(): password}
        dovecot = Dovecot(directory, cert, key, users).start()
        smtp = SmtpServer(dovecot, users, cert, key).start()
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return MailServers(directory, city.lower(), password, dovecot, smtp, cert)
