"""`facade test --junit FILE`: the replayed contract examples as JUnit XML, for CI.

One `<testsuite>` per curation, or per API of a multi-API curation (fixtures whose tool
the curation no longer has go to the curation's own suite); one `<testcase>` per fixture,
`classname` its tool and `name` the fixture's name. A result that differs from the golden
one is a `<failure>` whose text is the diff; a fixture that cannot be replayed is an
`<error>`. Where the recorded answer deviates from the documented response schema the
lines go to the testcase's `<system-out>`, and their count to its `deviations` property.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Case", "junit_xml", "write_junit"]


@dataclass(frozen=True)
class Case:
    """One replayed fixture."""

    suite: str
    tool: str
    name: str
    file: str
    failure: str | None = None  # why the result is not the golden one
    error: str | None = None  # why it could not be replayed
    details: str = ""  # the diff of a failure
    out: Sequence[str] = ()  # the deviation lines
    properties: dict[str, str] = field(default_factory=dict)


def junit_xml(title: str, cases: Sequence[Case]) -> ET.ElementTree[ET.Element]:
    root = ET.Element("testsuites", name=title)
    suites: dict[str, list[Case]] = {}
    for case in cases:
        suites.setdefault(case.suite, []).append(case)
    for name, members in suites.items():
        suite = ET.SubElement(root, "testsuite", name=name)
        _counts(suite, members)
        for case in members:
            suite.append(_testcase(case))
    _counts(root, cases)
    ET.indent(root)
    return ET.ElementTree(root)


def _counts(element: ET.Element, cases: Sequence[Case]) -> None:
    element.set("tests", str(len(cases)))
    element.set("failures", str(sum(c.failure is not None for c in cases)))
    element.set("errors", str(sum(c.error is not None for c in cases)))
    element.set("skipped", "0")


def _testcase(case: Case) -> ET.Element:
    element = ET.Element("testcase", classname=case.tool, name=case.name, file=case.file)
    if case.properties:
        properties = ET.SubElement(element, "properties")
        for key, value in case.properties.items():
            ET.SubElement(properties, "property", name=key, value=value)
    if case.failure is not None:
        failure = ET.SubElement(element, "failure", message=case.failure, type="difference")
        failure.text = case.details
    if case.error is not None:
        ET.SubElement(element, "error", message=case.error, type="replay")
    if case.out:
        ET.SubElement(element, "system-out").text = "\n".join(case.out)
    return element


def write_junit(path: Path, title: str, cases: Sequence[Case]) -> None:
    """Raises `OSError` when the file cannot be written."""
    junit_xml(title, cases).write(path, encoding="utf-8", xml_declaration=True)
