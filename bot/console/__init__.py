"""The agent console: staff sign in and work the department queues (see README.md here)."""
