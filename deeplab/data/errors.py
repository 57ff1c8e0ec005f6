"""The one exception type the data code raises for problems a user can fix."""


class DataError(ValueError):
    """A problem with the user's data or arguments: says what, which file, and what to do.

    Scripts catch it and print the message on one line instead of a traceback.
    """
