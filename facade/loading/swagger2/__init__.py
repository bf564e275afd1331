"""Swagger 2.0 → OpenAPI 3.0, in memory, once per load.

The rest of facade reads OpenAPI 3 only: a Swagger 2.0 document is converted as it is
loaded, the root file and every file its `$ref`s reach, in one walk. Operations are still
resolved lazily afterwards, by `facade.loading.spec`. The README's "Swagger 2.0" section lists
what becomes what: `definitions` → `components.schemas` (refs into other files keep their
file part and get the new pointer, and those files are converted in place), a body
parameter → `requestBody`, `formData` → a form body, `collectionFormat` → `style` and
`explode`, response `schema` → `content` per `produces` type, `securityDefinitions` →
`securitySchemes`, `host`/`basePath`/`schemes` → `servers`. `x-` extensions are kept.

What cannot be converted is an `Issue` of the operation holding it: curating that
operation fails with the issue's file, JSON pointer and reason, and the rest of the
document stays usable. Issues the 3.0 document cannot even express (`collectionFormat:
tsv`) are also warnings, for the operations nobody curated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facade.errors import SpecError
from facade.loading.swagger2.converter import Converter
from facade.loading.swagger2.issues import Conversion, Issue

__all__ = ["Conversion", "Issue", "convert"]


def convert(file: Path, data: dict[str, Any], *, display: str) -> Conversion:
    """Convert a parsed Swagger 2.0 document (and the files it refers to).

    Raises:
        SpecError: the document says it is a Swagger version other than 2.0.
    """
    version = str(data.get("swagger"))
    if version != "2.0":
        raise SpecError(display, f"Swagger {version} documents are not supported; facade "
                        "reads Swagger 2.0, OpenAPI 3.0 and 3.1", pointer="#/swagger")
    converter = Converter(file.resolve(), data, display)
    return Conversion(converter.document(data), converter.files, converter.issues)
