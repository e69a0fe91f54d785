"""Telegram handlers, one module a feature: parse the update, call a service, render the reply."""
