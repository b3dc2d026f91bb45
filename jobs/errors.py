"""Errors a user of the command line sees as one clear line (no traceback)."""


class AudienceError(Exception):
    """A problem with input, configuration or environment, stated for the operator."""


class ConfigError(AudienceError):
    """A conf/ file is missing, unreadable or holds an invalid value."""

    def __init__(self, file, key, problem):
        super().__init__(f"{file}: {key}: {problem}")
        self.file, self.key, self.problem = file, key, problem
