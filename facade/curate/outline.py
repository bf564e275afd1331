"""Every operation of a spec as `facade init` lists it: a tool name, what `operation:` says,
and comment lines with its parameters and the fields of its answer.

Each operation is read by the loader itself (`OpenAPIDocument.operation`), so operations,
path items, parameters and responses that are `$ref`s into other files (DigitalOcean's
spec is hundreds of them) give their operationIds, summaries and parameters as if written
inline, and a Swagger 2.0 document is read as converted. An operation the loader cannot
read is still listed, by `METHOD /path`, with the reason.

Names come from operationIds (`listModels` → `list_models`, `repos/get-content` →
`repos_get_content`), from the method and path only without one. Operations with an
operationId are named first, in the starter's order (GET and HEAD first, then by path), so
a name made from a path never pushes one made from an operationId to a `_2`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from facade.curate.schema_view import SchemaView, SchemaViews, first_line
from facade.errors import SpecError
from facade.loading.flatten import FORM_TYPES, is_forbidden_header
from facade.loading.spec import OpenAPIDocument, Operation, OperationRef, Response, label_of
from facade.tools import READ_ONLY_METHODS, tool_name_for, unique_tool_name

__all__ = ["MAX_CHILDREN", "MAX_FIELDS", "MAX_PARAMS", "OperationOutline", "outline"]

MAX_PARAMS = 15  # parameters listed per operation
MAX_FIELDS = 12  # top-level fields of an answer
MAX_CHILDREN = 5  # fields listed under each of those
_MAX_ARRAY_NESTING = 4  # `[][][]…` unwrapped before giving up on fields


@dataclass(frozen=True)
class OperationOutline:
    """One operation as the starter lists it."""

    ref: OperationRef
    name: str  # the suggested tool name
    key: str  # for `operation:`: the operationId when it names only this one, else the label
    summary: str  # "" when the spec has none
    deprecated: bool
    notes: tuple[str, ...]  # comment lines: the parameters and response fields, or a problem

    @property
    def writes(self) -> bool:
        return self.ref.method not in READ_ONLY_METHODS


def outline(spec: OpenAPIDocument, *, details: bool = True) -> list[OperationOutline]:
    """Every operation of `spec`, GET and HEAD first, then by path and method; without
    `details`, names and keys only (no parameters or response fields in `notes`)."""
    refs = sorted(spec.by_label.values(),
                  key=lambda r: (r.method not in READ_ONLY_METHODS, r.path, r.method))
    views = SchemaViews(spec.resolver)
    read: list[tuple[OperationRef, Operation | None, str | None]] = []
    for ref in refs:
        try:
            read.append((ref, spec.operation(ref), None))
        except SpecError as exc:
            read.append((ref, None, "; ".join(p.message for p in exc.problems)))
    ids = [(op.operation_id if op else None) or ref.operation_id for ref, op, _ in read]
    counts = Counter(i for i in ids if i)
    names: dict[int, str] = {}
    taken: set[str] = set()
    for with_id in (True, False):
        for index, ((ref, _, _), op_id) in enumerate(zip(read, ids)):
            if bool(op_id) == with_id:
                names[index] = unique_tool_name(tool_name_for(op_id, ref.method, ref.path),
                                                taken)
                taken.add(names[index])
    result = []
    for index, ((ref, op, problem), op_id) in enumerate(zip(read, ids)):
        # An operationId spelled like `GET /path` would be read as that label: such an
        # operation is named by its own label.
        unique = op_id is not None and counts[op_id] == 1 and label_of(op_id) is None
        notes = [ref.label] if unique else []
        if op is None:
            notes.append(f"cannot be read: {problem}")
        elif details:
            notes += _parameters(views, op) + _response(views, op.response)
        summary = first_line(op.summary or op.description, 200) if op else ""
        result.append(OperationOutline(ref, names[index], op_id if unique and op_id else
                                       ref.label, summary, bool(op and op.deprecated),
                                       tuple(notes)))
    return result


def _parameters(views: SchemaViews, op: Operation) -> list[str]:
    """`name: in, type[, required] — first line of its description`, one per parameter,
    as the loader makes arguments of them: the top-level properties of a JSON or form body
    each count as one (`body`), any other body is one argument named `body`."""
    rows = []
    for param in op.parameters:
        view = views.view(param.schema, param.base)
        flags = [f for f, on in (("required", param.required), ("deprecated", param.deprecated),
                                 ("dropped: facade owns this header", param.location ==
                                  "header" and is_forbidden_header(param.name))) if on]
        rows.append((param.name, param.location, views.label(view), flags,
                     param.description or view.description))
    if op.body is not None:
        body = views.view(op.body.schema, op.body.base)
        media = op.body.media_type.split(";")[0].strip().lower()
        if body.has_properties and (media == "application/json" or media.endswith("+json")
                                or media in FORM_TYPES):
            for name, sub in body.properties.items():
                prop = views.sub(sub)
                required = op.body.required and name in body.required
                rows.append((name, "body", views.label(prop), ["required"] if required else [],
                             prop.description))
        else:
            rows.append(("body", "body", views.label(body),
                         ["required"] if op.body.required else [],
                         op.body.description or body.description))
    if not rows:
        return ["params: none"]
    lines = ["params:"]
    for name, where, label, flags, description in rows[:MAX_PARAMS]:
        text = first_line(description)
        lines.append(f"  {name}: {', '.join([where, label, *flags])}"
                     + (f" — {text}" if text else ""))
    if len(rows) > MAX_PARAMS:
        lines.append(f"  … {len(rows) - MAX_PARAMS} more")
    return lines


def _response(views: SchemaViews, response: Response | None) -> list[str]:
    """The success answer's fields, two levels deep, as `response.include` names them."""
    if response is None:
        return ["response: no success response documented"]
    if response.media_type is None:
        return [f"response ({response.status}): no body"]
    where = f"{response.status}, {response.media_type}"
    media = response.media_type.split(";")[0].strip().lower()
    if not (media == "application/json" or media.endswith("+json")):
        return [f"response ({where}): not JSON, so no fields to pick"]
    whole = views.view(response.schema, response.base)
    root, prefix = _unwrap(views, whole, "")
    fields = root.properties
    if not fields:
        return [f"response ({where}): {views.label(whole)}"]
    lines = [f"response ({where}): {views.label(whole)}; fields for response.include:"]
    for name, sub in list(fields.items())[:MAX_FIELDS]:
        path = f"{prefix}.{name}" if prefix else name
        child = views.sub(sub)
        lines.append(f"  {path}: {views.label(child)}")
        inner, below = _unwrap(views, child, path)
        children = inner.properties
        for field, leaf in list(children.items())[:MAX_CHILDREN]:
            lines.append(f"    {below}.{field}: {views.label(views.sub(leaf))}")
        if len(children) > MAX_CHILDREN:
            lines.append(f"    … {len(children) - MAX_CHILDREN} more in {below}")
    if len(fields) > MAX_FIELDS:
        lines.append(f"  … {len(fields) - MAX_FIELDS} more")
    return lines


def _unwrap(views: SchemaViews, view: SchemaView, path: str) -> tuple[SchemaView, str]:
    """The items of an array (of arrays…) with `[]` added to `path` for each level."""
    for _ in range(_MAX_ARRAY_NESTING):
        if not view.only_array or view.items is None:
            break
        view, path = views.sub(view.items), path + "[]"
    return view, path
