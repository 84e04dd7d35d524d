"""\"Was it solved?\": the question a citizen is asked when a ticket is resolved, and its answers."""
