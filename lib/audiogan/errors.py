"""The suite's own errors: each message names the bad value or file and says what to do."""


class ConfigError(ValueError):
    """A parameter has a value the suite cannot use; the message says which and what to do."""


class DataError(ValueError):
    """A dataset cannot be built; the message names the folder or file and what to do."""
