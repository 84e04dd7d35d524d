"""What the bot says on its own (commands); everything else is the assistant's wording."""

from __future__ import annotations

WELCOME = (
    "Hello! I am the city hall's assistant. Ask me a question about city services, or "
    "tell me about a problem and I will pass it to the right department as a ticket with an ID.\n\n"
    "Privacy: we store your messages, your Telegram chat ID and anything you send us (photos, "
    "locations) so that staff can answer and follow up on your requests; we use them for nothing else.\n\n"
    "Commands: /status <ticket ID> tells you where a ticket is; /human passes you to a member of staff; "
    "/link email <your address> connects this chat with your e-mail, so staff see one history."
)

ASK_TICKET_ID = 'Which ticket? Please send its ID after the command, for example "/status K7M-39Q-XD2".'

UNKNOWN_COMMAND = (
    "I don't know that command. Just write your question in a message; or use /status <ticket ID>, "
    "/human or /link."
)

EMPTY_MENTION = "Yes? Please write your question in the same message as the mention."

# How the assistant reads the commands: its training data knows these phrasings.
STATUS_FOR_ASSISTANT = "what is the status of {argument}?"
HUMAN_FOR_ASSISTANT = "I want to talk to a real person"
