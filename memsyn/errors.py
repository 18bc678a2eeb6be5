"""Errors that the command line turns into a one-line message and a non-zero exit status."""


class UsageError(Exception):
    """Bad input from the user: a file, a configuration or a parameter. The message states
    what is wrong and what to do."""


class NotImplementedCommand(UsageError):
    """A subcommand that this version does not implement yet."""
