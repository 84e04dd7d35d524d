"""Entry point for uvicorn (``uvicorn bot.api.main:create --factory``)."""

from fastapi import FastAPI

from bot.api.app import create_app
from bot.settings import get_settings


def create() -> FastAPI:
    return create_app(get_settings())
