"""Entry point for uvicorn (``uvicorn bot.api.main:create --factory``)."""

from fastapi import FastAPI

from bot.api.app import create_app
from bot.observability.logs import setup_logging
from bot.runtime import build_runtime


def create() -> FastAPI:
    runtime = build_runtime()
    setup_logging(runtime.settings.log_format, runtime.settings.log_level)
    return create_app(runtime)
