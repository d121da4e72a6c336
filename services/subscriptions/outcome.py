"""What became of one attempt to deliver a subscription's events, whatever the channel."""
from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    # the receiver has the events: a 2xx answer, or a publish the broker confirmed
    settled: bool
    # the receiver asked never to be sent anything again (HTTP 410 Gone)
    gone: bool = False
    # the HTTP status, when there was an answer
    status: int = None
    # why it failed, in our own words (never the receiver's body, which may hold anything)
    error: str = None
    # how long the attempt took
    seconds: float = 0.0
