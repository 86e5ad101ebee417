"""The one error type of the index: its message is a complete one-line explanation for the command line."""


class SearchIndexError(ValueError):
    """A refused index, query or build input; the message says what, where and what to do."""
