"""Call time: one tool call, from validated arguments to a structured result.

Checking arguments (`checks`), encoding the request (`encoding`), sending it (`upstream`,
`resilience`), reading and decoding the answer (`bodies`), turning failures into errors
for the model (`failures`), and the `CuratedTool` that runs these in order (`tool`).
`events` records what a call did for the observers; `scrub` keeps secrets out.

Call time reads only the frozen definitions of `facade.tools`: never the spec or the
curation (an import-linter contract keeps `facade.loading` out).
"""
