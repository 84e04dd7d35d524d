"""One row per periodic job: which scheduler process runs it now, and until when.

A scheduler runs a job only while it holds the job's lease, so two schedulers (two machines,
or a restart that overlaps the old process) do not do the same work at the same time. The lease
is an optimisation: the jobs' own unique constraints are what make their effects happen once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.db import Base
from bot.store.types import UTCDateTime


class JobLease(Base):
    __tablename__ = "job_leases"

    job: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    until: Mapped[datetime] = mapped_column(UTCDateTime())
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
