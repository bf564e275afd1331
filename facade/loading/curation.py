"""The schema of curation.yaml (version 1), as pydantic models.

Shape and single-field rules live here; whether an operation or a parameter exists is a
question for the spec, answered in `facade.loading.single`. The `server:` and `backend:` sections are in
`facade.loading.sections`. Every model forbids unknown keys, so a typo is an error with a suggestion, never a silently ignored setting.
"""

from __future__ import annotations

import datetime
import types
import typing
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Field,
    JsonValue,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from facade.errors import CurationError, Problem, did_you_mean
from facade.loading.sections import (
    Auth,
    Backend,
    CircuitBreaker,
    InboundAuth,
    JWTAuth,
    RateLimitCuration,
    Retries,
    ServerInfo,
    StaticTokenAuth,
    StrictModel,
    Timeouts,
)
from facade.loading.yamlsource import YAMLDocument
from facade.tools import DEFAULT_MAX_ARGUMENT_BYTES

__all__ = ["Auth", "Backend", "CircuitBreaker", "Curation", "InboundAuth", "JWTAuth",
           "ParamCuration", "PromptArgumentCuration", "PromptCuration", "RateLimitCuration",
           "APICuration", "MultiCuration", "ResourceCuration", "ResponseCuration", "Retries",
           "ServerInfo", "StaticTokenAuth", "Timeouts", "ToolCuration", "curation_json_schema",
           "field_named", "model_at", "parse_any_curation",
           "parse_curation"]

TOOL_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"


class ParamCuration(StrictModel):
    rename: str | None = Field(
        None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$",
        description="Argument name shown to the agent instead of the spec's name.",
    )
    description: str | None = Field(None, description="Replaces the spec's description.")
    value: JsonValue = Field(
        None, description="A fixed value: always sent, never shown to the agent."
    )
    hidden: bool = Field(False, description="Never shown and never sent.")
    default: JsonValue = Field(None, description="Default shown to the agent and sent when omitted.")
    allow: list[Literal["/", "\\", ";", "?", "#"]] = Field(
        default_factory=list, description="Characters a path parameter may contain; they are "
        "sent percent-encoded. Dot segments and control characters are always refused."
    )
    max_length: int = Field(256, ge=1, description="Longest path parameter value accepted.")

    @model_validator(mode="after")
    def _compatible(self) -> ParamCuration:
        fixed = "value" in self.model_fields_set
        if fixed and self.hidden:
            raise ValueError("`value` and `hidden` exclude each other: a fixed value is sent")
        if (fixed or self.hidden) and (self.rename or self.description or
                                       "default" in self.model_fields_set):
            raise ValueError("a fixed or hidden parameter is not shown, so it takes no "
                             "rename, description or default")
        return self

    @property
    def is_fixed(self) -> bool:
        return "value" in self.model_fields_set

    @property
    def has_default(self) -> bool:
        return "default" in self.model_fields_set


Validation = Literal["tolerant", "strict"]


class ResponseCuration(StrictModel):
    include: list[str] | None = Field(
        None, description="Allow-list of dotted paths kept in results (`[]` for arrays)."
    )
    redact: list[str] = Field(
        default_factory=list, description="Dotted paths removed from results and output schema."
    )
    max_items: int | None = Field(
        None, gt=0, description="Arrays longer than this are cut, with a note saying so."
    )
    validate_: Validation | None = Field(
        None, alias="validate", description="`tolerant` (the default): an answer that "
        "deviates from the documented response schema is passed on unchanged, and the "
        "deviation logged and counted. `strict`: such an answer fails the call. Defaults "
        "to the top-level `response.validate`."
    )


class ResponseDefaults(StrictModel):
    """Defaults for the `response:` section of every tool and resource."""

    validate_: Validation = Field(
        "tolerant", alias="validate", description="`tolerant` or `strict`: how answers "
        "that deviate from the documented response schema are handled, unless a tool's "
        "`response.validate` says otherwise."
    )


class ToolCuration(StrictModel):
    operation: str = Field(description="An operationId, or `METHOD /path` as in the spec.")
    description: str | None = Field(
        None, description="Replaces the operation's summary and description."
    )
    title: str | None = Field(None, description="Human-readable title of the tool.")
    params: dict[str, ParamCuration] = Field(
        default_factory=dict, description="Per-parameter curation, keyed by the spec's name."
    )
    response: ResponseCuration = Field(
        default_factory=ResponseCuration, description="How results are shaped."
    )
    max_response_bytes: int | None = Field(
        None, gt=0, description="This tool's cap on the decoded response body; defaults "
        "to `backend.max_response_bytes`."
    )
    max_argument_bytes: int = Field(
        DEFAULT_MAX_ARGUMENT_BYTES, gt=0, description="Largest arguments a call may pass, "
        "measured as JSON, checked before anything else looks at them."
    )
    scopes: list[str] = Field(
        default_factory=list, description="Scopes a caller's token needs to see and call "
        "this tool (with `server.auth`)."
    )
    claims: dict[str, list[str]] = Field(
        default_factory=dict, description="Claim conditions on the caller's verified token "
        "(with `server.auth`): for each claim named, the token's value (or, for a list "
        "claim such as `groups`, one of its items) must be one of those listed; callers who "
        "fail one do not see the tool, and cannot call it."
    )
    audit_args: list[str] = Field(
        default_factory=list, description="Arguments whose values the audit log records; "
        "others are never logged."
    )


class ResourceCuration(ToolCuration):
    """A GET operation exposed as an MCP resource (or resource template)."""

    uri: str = Field(
        pattern=r"^[a-z][a-z0-9+.-]*://",
        description="The resource URI, e.g. `inventory://items/{sku}`: each `{name}` is an "
        "argument of the operation (after renames); without any, a fixed resource.",
    )
    mime_type: str = Field("application/json", description="MIME type of the contents.")


def section_of(tool: ToolCuration) -> str:
    """Where an operation's curation sits: `resources` for a resource, else `tools`."""
    return "resources" if isinstance(tool, ResourceCuration) else "tools"


class PromptArgumentCuration(StrictModel):
    name: str = Field(pattern=r"^[a-z_][a-z0-9_]{0,63}$", description="Argument name.")
    description: str | None = Field(None, description="What the argument is.")
    required: bool = Field(True, description="Whether the client must give it.")


class PromptCuration(StrictModel):
    """A prompt template offered to the client, usually steering toward curated tools."""

    description: str | None = Field(None, description="What the prompt is for.")
    title: str | None = Field(None, description="Human-readable title.")
    arguments: list[PromptArgumentCuration] = Field(
        default_factory=list, description="Arguments filled into `template` as `{name}`."
    )
    tools: list[str] = Field(
        default_factory=list, description="Curated tools the prompt relies on; checked at load."
    )
    template: str = Field(min_length=1, description="The prompt text, with `{name}` "
                          "placeholders for arguments (write `{{` for a literal brace).")


ToolName = Annotated[str, Field(pattern=TOOL_NAME_PATTERN)]


class Curation(StrictModel):
    """The whole curation.yaml."""

    version: Literal[1] = Field(description="Format version; always 1.")
    spec: str = Field(description="Path to the OpenAPI document, relative to this file.")
    overlays: list[str] = Field(
        default_factory=list, description="OpenAPI Overlay 1.0 documents (paths relative to "
        "this file) applied in order to the spec's root document as it is loaded: fixes to "
        "a spec you do not own, without editing it."
    )
    server: ServerInfo = Field(default_factory=ServerInfo, description="MCP server identity.")
    backend: Backend = Field(description="Where and how calls are proxied.")
    read_only: bool = Field(True, description="Refuse any operation that is not GET or HEAD.")
    redact: list[str] = Field(
        default_factory=list, description="Field-name globs removed from every response."
    )
    response: ResponseDefaults = Field(
        default_factory=ResponseDefaults, description="Defaults for every tool's `response:`."
    )
    tools: dict[ToolName, ToolCuration] = Field(
        min_length=1, description="The curated tools, keyed by MCP tool name."
    )
    resources: dict[ToolName, ResourceCuration] = Field(
        default_factory=dict, description="GET operations exposed as MCP resources, keyed "
        "by resource name."
    )
    prompts: dict[ToolName, PromptCuration] = Field(
        default_factory=dict, description="Prompt templates, keyed by prompt name."
    )


API_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
APIName = Annotated[str, Field(pattern=API_NAME_PATTERN)]
# The keys that describe one API: at the top level of a single-API curation, or under
# `apis.<name>` of a multi-API one.
API_KEYS = ("spec", "overlays", "backend", "read_only", "redact", "response", "tools",
            "resources")


class APICuration(StrictModel):
    """One API of a multi-API curation: the single-API keys, plus a `namespace`."""

    namespace: APIName | None = Field(
        None, description="Prefix of this API's tool and resource names: `<namespace>_<name>`. "
        "Without it, the names are used as written."
    )
    spec: str = Curation.model_fields["spec"]  # type: ignore[assignment]
    overlays: list[str] = Curation.model_fields["overlays"]  # type: ignore[assignment]
    backend: Backend = Curation.model_fields["backend"]  # type: ignore[assignment]
    read_only: bool = Curation.model_fields["read_only"]  # type: ignore[assignment]
    redact: list[str] = Curation.model_fields["redact"]  # type: ignore[assignment]
    response: ResponseDefaults = Curation.model_fields["response"]  # type: ignore[assignment]
    tools: dict[ToolName, ToolCuration] = \
        Curation.model_fields["tools"]  # type: ignore[assignment]
    resources: dict[ToolName, ResourceCuration] = \
        Curation.model_fields["resources"]  # type: ignore[assignment]

    def as_curation(self, server: ServerInfo) -> Curation:
        """This API as a single-API curation (without prompts), for the loader."""
        fields = {key: getattr(self, key) for key in API_KEYS}
        return Curation.model_construct(version=1, server=server, prompts={}, **fields)


class MultiCuration(StrictModel):
    """A curation.yaml serving several APIs, each with its own spec and backend."""

    version: Literal[1] = Field(description="Format version; always 1.")
    server: ServerInfo = Field(default_factory=ServerInfo, description="MCP server identity.")
    apis: dict[APIName, APICuration] = Field(
        min_length=1, description="The APIs behind this façade, keyed by a short name; each "
        "has its own `spec`, `backend`, `tools`…"
    )
    prompts: dict[ToolName, PromptCuration] = Field(
        default_factory=dict, description="Prompt templates, keyed by prompt name; `tools` "
        "are final (namespaced) tool names."
    )


def curation_json_schema() -> dict[str, Any]:
    """The JSON Schema of curation.yaml: a single-API curation, or a multi-API one."""
    schema: dict[str, Any] = TypeAdapter(Curation | MultiCuration).json_schema()
    schema["title"] = "curation.yaml"
    schema["description"] = ("A façade curation: one API at the top level (`spec`, "
                             "`backend`, `tools`…), or several under `apis:`.")
    return schema


def parse_curation(doc: YAMLDocument) -> Curation:
    """Validate the shape of a single-API curation, reporting every problem at once."""
    if not isinstance(doc.data, dict):
        raise CurationError(doc.file, [doc.problem((), "the top level must be a mapping",
                                                    code="shape/top-level")])
    try:
        return Curation.model_validate(doc.data)
    except ValidationError as exc:
        raise CurationError(doc.file, [_problem(doc, err) for err in exc.errors()]) from None


def parse_any_curation(doc: YAMLDocument) -> Curation | MultiCuration:
    """A single-API curation, or a multi-API one when the document has `apis:`."""
    if not isinstance(doc.data, dict) or "apis" not in doc.data:
        return parse_curation(doc)
    mixed = [key for key in API_KEYS if key in doc.data]
    if mixed:
        raise CurationError(doc.file, [doc.problem(
            (key,), f"{key!r} at the top level cannot be combined with `apis:`", key=True,
            hint="move it under apis.<name>, or remove `apis:`", code="shape/mixed-apis")
            for key in mixed])
    try:
        return MultiCuration.model_validate(doc.data)
    except ValidationError as exc:
        raise CurationError(doc.file, [_problem(doc, err, MultiCuration)
                                       for err in exc.errors()]) from None


def _problem(doc: YAMLDocument, err: Any, root: type[BaseModel] = Curation) -> Problem:
    loc = tuple(p for p in err["loc"] if p != "[key]")
    kind, message, hint = err["type"], err["msg"], None
    if kind == "extra_forbidden":
        hint = did_you_mean(str(loc[-1]), _fields_at(loc[:-1], root))
        return doc.problem(loc, f"unknown key {loc[-1]!r}", hint=hint, key=True,
                           code="shape/unknown-key")
    if kind == "missing":
        return doc.problem(loc, f"missing required key {loc[-1]!r}", key=True,
                           code="shape/missing-key")
    if err["loc"][-1:] == ("[key]",):
        message = f"invalid name {loc[-1]!r}: {message.lower()}"
        hint = "API names are snake_case: " + API_NAME_PATTERN if loc[:1] == ("apis",) and \
            len(loc) == 2 else "tool names are snake_case: ^[a-z][a-z0-9_]{0,63}$"
        return doc.problem(loc, message, hint=hint, key=True, code="shape/invalid-name")
    if kind == "value_error":
        message = message.removeprefix("Value error, ")
    value = err.get("input")
    if loc[-1:] == ("tools",) and (value is None or kind == "too_short"):
        # A fresh `facade init` starter: every tool is still commented out.
        return doc.problem(loc, "no tool is chosen yet", hint=(
            "uncomment a few tools under `tools:`: remove the `# ` before a tool's name and "
            "its `operation:` line, or add one, e.g. `get_item: {operation: getItem}`"),
            code="shape/no-tools")
    if isinstance(value, (bool, datetime.date)) and kind in ("string_type", "literal_error"):
        hint = f'YAML read this as {type(value).__name__}; quote the value, e.g. "no"'
    # The kind is pydantic's error type, which is stable: `shape/int-parsing`, …
    return doc.problem(loc, message, hint=hint, code="shape/" + kind.replace("_", "-"))


def _fields_at(loc: tuple[Any, ...], root: type[BaseModel] = Curation) -> list[str]:
    """The keys allowed at `loc`, for "did you mean" on an unknown key."""
    model = model_at(loc, root)
    return [f.alias or n for n, f in model.model_fields.items()] if model else []


def model_at(loc: tuple[Any, ...], root: type[BaseModel]) -> type[BaseModel] | None:
    """The model of the node at `loc` (data keys, as in the YAML), or None when that node
    is not a model (a list, a scalar) or `loc` leaves the schema."""
    tp: Any = root
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = field_named(tp, str(part))
            if field is None:
                return None
            tp = field.annotation
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        elif typing.get_origin(tp) is list:
            tp = typing.get_args(tp)[0]
        else:
            return None
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def field_named(model: type[BaseModel], key: str) -> Any:
    """The field a curation key names (`validate` is the field `validate_`)."""
    return next((f for n, f in model.model_fields.items() if (f.alias or n) == key), None)


def _unwrap(tp: Any) -> Any:
    if typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return args[0] if len(args) == 1 else tp
    return tp
