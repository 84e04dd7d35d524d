"""One citizen across channels: identities are linked only when the citizen proves they hold both."""
