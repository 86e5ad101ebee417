"""Exceptions raised by the data layer.

Every message names where the problem is (file and line, or file and field) and what was expected, so a
bad line in a data set of millions can be found and fixed without a debugger.
"""


class DataError(ValueError):
    """Input data does not match its schema (wrong field count, list length, value, encoding...).

    The message starts with the source ("path:line") when one is known. `source` and `field` are kept as
    attributes for programs that collect errors (the converter's `rejected.tsv`).
    """

    def __init__(self, message, source=None, field=None):
        super().__init__(message)
        self.source = source
        self.field = field

    def __reduce__(self):
        # Keeps the attributes when the error crosses a process boundary (multiprocessing workers).
        return (type(self), (self.args[0], self.source, self.field))


class DataFileNotFoundError(DataError, FileNotFoundError):
    """A list file, data file, shard or schema.json does not exist.

    It is both a `DataError` (ValueError) and a `FileNotFoundError`, so either `except` clause catches it.
    """
