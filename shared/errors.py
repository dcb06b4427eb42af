"""Errors that decide retries.

A `PermanentError` is bad input: it is recorded and the message acknowledged.
A `TransientError` is raised out of the handler so the platform redelivers.
"""


class TunedropError(Exception):
    """Base class of every error Tunedrop raises on purpose."""


class PermanentError(TunedropError):
    """Retrying cannot help: record it and acknowledge the message."""


class TransientError(TunedropError):
    """Retrying may help: let the platform redeliver the message."""


class ConfigError(TunedropError):
    """A setting is missing or malformed; raised once, at cold start."""


class JobNotFound(PermanentError):
    """An operator named a job that does not exist."""


class NotAllowed(PermanentError):
    """What was asked does not fit the job's state or the model registry."""
