"""Reading a declarative YAML table (the suitability policy, the data-sharing profiles)
so that a fault is reported as `<file>:<line>: <what is wrong>`.

A table is composed, not loaded: PyYAML's node tree keeps each node's line, and its
reader walks the nodes, raising its TableError at the node at fault.
"""
import yaml


class TableError(ValueError):
    """A table that cannot be used; the message names the file, line and fault."""

    def __init__(self, source, line, fault):
        self.source, self.line, self.fault = source, line, fault
        super().__init__(f"{source}:{line}: {fault}")

    @classmethod
    def at(cls, source, node, fault):
        """The fault at `node` (None: the table as a whole)."""
        return cls(source, node.start_mark.line + 1 if node is not None else 0, fault)


def compose(text, source, error=TableError):
    """The node tree of `text` (None if it is empty); `error` (a TableError) if it is no YAML."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" ({exc.context} at line {exc.context_mark.line + 1})" if exc.context and exc.context_mark else ""
        raise error(source, mark.line + 1 if mark else 0, f"not valid YAML: {exc.problem}{where}")


def read(path, parse):
    """`parse(text, path)` of the file at `path`."""
    with open(path, encoding="utf-8") as handle:
        return parse(handle.read(), path)
