"""The people helpers live in the package (``bot.scenario``) so ``linli demo`` uses them too."""

from bot.scenario import make_staff, register, setup_community

__all__ = ["make_staff", "register", "setup_community"]
