"""The KB learning loop: an approved KB change becomes the model every Rasa process answers with.

``models.py`` holds the training requests (``model_builds``) and the history of which model
ran (``model_switches``); ``service.py`` their unit-of-work functions (request, claim with
collapsing, settle, the active model and the rollback target); ``rasa_api.py`` the client
for Rasa's token-protected ``PUT /model`` and ``GET /status``; ``trainer.py`` the worker
(``python -m bot trainer``) that trains one request at a time and swaps the model into every
Rasa process, the rollback, and what ``bot run`` loads at start.
"""
