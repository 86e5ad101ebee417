"""The one error type of the serving API: a status code and a message a user can act on."""


class RequestError(Exception):
    """A request the server refuses: `status` (4xx) and `message`, sent as `{"error": message}`."""

    def __init__(self, status, message):
        self.status = int(status)
        self.message = str(message)
        super().__init__(f"{self.status}: {self.message}")
