"""The development kit: everything that runs the bot without Telegram. Not used by the bot itself.

- ``sandbox/``: a loopback stand-in for the Telegram Bot API (``FakeTelegram``), validating every
  call against the official spec; ``python -m bot.devkit.sandbox`` runs it on its own.
- ``harness.py``: runs the real bot process (``python -m bot``) against the stand-in and waits
  until it has settled; the tests, the benchmarks and the demo drive the bot through it.
- ``scenario.py``: seeds a community and its people through the bot, as people would.
- ``demo.py`` and ``demo_record.py``: ``linli demo``, the two-day story, and the recorder that cuts
  what happened into steps and prints them or writes them as HTML.
"""
