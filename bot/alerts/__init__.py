"""Commitment alerts: tickets near or past their due time, told to their department and assignee."""
