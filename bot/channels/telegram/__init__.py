"""Telegram channel (python-telegram-bot): polling worker or webhook, sender, stand-in for tests."""
