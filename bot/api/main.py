"""Entry point for uvicorn (``uvicorn bot.api.main:create --factory``)."""

from fastapi import FastAPI

from bot.api.app import create_app
from bot.runtime import build_runtime


def create() -> FastAPI:
    return create_app(build_runtime())
