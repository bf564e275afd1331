"""The `lambda` section: cold start of `facade.lambda_handler`, with and without the
`facade build` artifact, side by side in one run.

A cold start is what a new Lambda execution environment pays before its first answer:
a fresh Python process imports `facade.lambda_handler` and hands it one API Gateway v2
(HTTP API) event carrying `tools/list`; the handler loads the curation (from the artifact
when there is a current one), builds the app, starts its lifespan and answers. Measured
from just before the process is spawned to the moment the handler returns, so the
interpreter's own start is in, and its exit is not. Lambda's own init (fetching the code,
starting the runtime) is not: it is the same for every variant.
"""

from __future__ import annotations

import json
import subprocess
import time

from lib import PY, Options, child_env, median, ms, table
from startup import build_artifact, curation_of, spec_size

# The child: import, one event through the handler, timestamps out on stdout.
CHILD = """
import json, sys, time
from facade.lambda_handler import handler
imported = time.time()
body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
path = "/mcp"
host = "abc123.execute-api.eu-west-1.amazonaws.com"
event = {
    "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
    "headers": {"host": host, "content-type": "application/json",
                "accept": "application/json, text/event-stream",
                "mcp-protocol-version": "2025-06-18"},
    "requestContext": {"domainName": host, "stage": "$default", "routeKey": "$default",
                       "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1",
                                "sourceIp": "127.0.0.1"}},
    "body": body, "isBase64Encoded": False}
response = handler(event, None)
done = time.time()
tools = len(json.loads(response["body"])["result"]["tools"])
print(json.dumps({"imported": imported, "done": done, "status": response["statusCode"],
                  "tools": tools}))
"""


def lambda_start(spec: str, artifact: str) -> tuple[float, float]:
    """Seconds from spawn to the first answer, and of those, to the end of the import."""
    env = child_env(FACADE_CONFIG=str(curation_of(spec)), FACADE_ARTIFACT=artifact,
                    FACADE_ALLOW_UNAUTHENTICATED="1")  # the bench curations have no auth
    spawned = time.time()
    out = subprocess.run([PY, "-c", CHILD], env=env, capture_output=True, text=True,
                         timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"{spec}: the handler failed:\n{out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["status"] != 200 or result["tools"] < 1:
        raise RuntimeError(f"{spec}: unexpected answer {result}")
    return result["done"] - spawned, result["imported"] - spawned


def run(opts: Options) -> None:
    rows = []
    for spec in ("example", *opts.specs):
        artifact = str(build_artifact(spec, opts))
        starts: dict[str, list[float]] = {"cold": [], "warm": []}
        after: dict[str, list[float]] = {"cold": [], "warm": []}  # after the import
        imports: list[float] = []
        ratios: list[float] = []
        for _ in range(opts.repeat):  # interleaved: each round one of each
            for variant, value in (("cold", "off"), ("warm", artifact)):
                total, imported = lambda_start(spec, value)
                starts[variant].append(total)
                after[variant].append(total - imported)
                imports.append(imported)
            ratios.append(starts["cold"][-1] / starts["warm"][-1])
        cells = [f"{ms(median(v))} ({ms(min(v))})" if len(v) > 1 else ms(v[0])
                 for v in starts.values()]
        rows.append([spec, spec_size(spec), ms(median(imports)), *cells,
                     f"{median(ratios):.2f}×", ms(median(after["cold"])),
                     ms(median(after["warm"])),
                     f"{median(after['cold']) / median(after['warm']):.2f}×"])
    table("7. Lambda cold start: a fresh process imports facade.lambda_handler and answers "
          "one API Gateway tools/list event",
          ["spec", "size", "import", "no artifact", "with artifact", "no artifact ×artifact",
           "after import: no artifact", "with artifact", "×"],
          rows,
          [f"Median of {opts.repeat} interleaved run(s), fastest in parentheses; from "
           "spawning the process to the handler's return (interpreter start included, "
           "Lambda's own init not). import: spawn to the end of `import "
           "facade.lambda_handler` (fastmcp, Mangum, starlette). ×artifact: median of each "
           "round's ratio. after import: from the end of the import to the answer (load, "
           "build, lifespan, one event), the part the artifact changes. With the artifact, the spec is never parsed: `facade build` at "
           "image build time is what keeps a big spec's cold start near the example's."])
