"""The errors a user can act on. Each says what was wrong and what was expected, naming the file, key,
flag or field; the command line prints it as ``mqe: error: <message>`` and exits with status 2.

This module imports nothing, so that every room (and the light commands) can raise and catch them."""


class MQEError(Exception):
    """Base of every error whose message is meant for the user, not a traceback."""


class ConfigError(MQEError, ValueError):
    """A bad preset name, override key or value; the message names it and what was expected."""
