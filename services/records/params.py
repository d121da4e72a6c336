"""Query parameters of the records APIs: a 400 that names the parameter at fault."""
from shared.web import BadRequest


def required_param(request, name):
    value = request.args.get(name, "").strip()
    if not value:
        raise BadRequest(f"the query parameter '{name}' is required", param=name)
    return value


def int_param(request, name, default=None, minimum=None, maximum=None):
    raw = request.args.get(name)
    if raw is None or raw == "":
        if default is None:
            raise BadRequest(f"the query parameter '{name}' is required", param=name)
        return default
    try:
        value = int(raw, 10)
    except ValueError:
        raise BadRequest(f"the query parameter '{name}' must be an integer", param=name)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise BadRequest(f"the query parameter '{name}' must be between {minimum} and {maximum}", param=name)
    return value
