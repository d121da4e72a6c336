from dataclasses import dataclass

from marshmallow import Schema


@dataclass(frozen=True)
class EventSpec:
    type: str
    producer: str
    schema: Schema
    version: int = 1
