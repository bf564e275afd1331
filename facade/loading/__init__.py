"""Load time: curation + OpenAPI spec → a validated, frozen `facade.tools.Facade`.

Reading YAML with positions (`yamlsource`), the curation's models (`curation`), the spec and
its `$ref`s (`refs`, `spec`, `swagger2`), JSON Schemas (`schemas`), flattening parameters
(`flatten`), text lint (`lint`), resources and prompts (`extras`), the `server:` section
(`server_section`), one API (`single`), several (`multi`), compiled artifacts
(`artifact`) and the entry points (`loader`).

Nothing here serves or calls anything: no fastmcp, no httpx (an import-linter contract).
"""
