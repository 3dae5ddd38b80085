"""``python -m bot``: the ``corb`` command (how ``corb serve`` starts its children)."""

from bot.cli import main

if __name__ == "__main__":
    main()
