"""One exception type for every problem a user can fix (bad paths, bad audio, bad labels)."""


class EESRError(ValueError):
    """A user-facing error: the message names the file or setting at fault and the fix."""
