"""The headless commands, one module each, and their registry (:mod:`vditui.commands.registry`)."""
