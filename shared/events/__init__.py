from shared.events.envelope import InvalidEvent, new_event, validate_event

__all__ = ["InvalidEvent", "new_event", "validate_event"]
