"""The people helpers live in the package (``bot.scenario``) so ``linli demo`` uses them too."""

from bot.scenario import ask_for_help, make_staff, register, setup_community

__all__ = ["ask_for_help", "make_staff", "register", "setup_community"]
