"""Linli (邻里): a Telegram bot for a neighbourhood's volunteer-points scheme."""

__version__ = "0.1.0"
