"""E-mail channel: IMAP in, SMTP out, with the loop-safety rules of mature auto-responders."""
