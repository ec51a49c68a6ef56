"""Version requirements of jobs: ``=1.2.0``, ``^1.2``, ``>=1.2,<2`` (SubmitJobRequest.version).

Parsing and matching use ``packaging`` (PEP 440 versions and specifiers): its comparison rules
are the well-tested ones pip uses, so "1.10" > "1.9" and pre-releases are handled correctly. PEP 440
has no caret, so the npm/Cargo forms are translated here: ``^1.2.3`` → ``>=1.2.3,<2``, ``^0.3`` →
``>=0.3,<0.4`` (below 1.0 the first non-zero part is the breaking one), ``~1.2`` → ``>=1.2,<1.3``.
``=1.2.0`` and a bare ``1.2.0`` mean exactly that version.

A job's requirement is stored as the normalised specifier text in the reserved
``workmesh.version`` label, so it survives restarts with the job and every replica routes it alike.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from workmesh.services.core.errors import InvalidArgument

__all__ = [
    "ANY",
    "VERSION_LABEL",
    "Requirement",
    "newest",
    "order_key",
    "parse_requirement",
    "stored_requirement",
    "version_of",
]

VERSION_LABEL = "workmesh.version"
MAX_REQUIREMENT_LENGTH = 200
_PREFIX = re.compile(r"\s*(\^|~(?!=)|=(?!=))\s*(.*)")


@functools.lru_cache(maxsize=1024)
def version_of(text: str) -> Version | None:
    """The PEP 440 version of a declared version string, or None when it is not one."""
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _release(field: str, text: str) -> tuple[int, ...]:
    base = version_of(text)
    if base is None:
        raise InvalidArgument(field, f"{text!r} is not a version (expected e.g. 1.2 or 1.2.0)")
    return base.release


def _translate(field: str, text: str) -> str:
    """PEP 440 specifier text for one written requirement (without the packaging check)."""
    parts = []
    for piece in text.split(","):
        match = _PREFIX.fullmatch(piece)
        if match is None:
            stripped = piece.strip()
            # A bare version is an exact pin; anything else goes to packaging as written.
            parts.append(f"=={stripped}" if version_of(stripped) is not None else stripped)
            continue
        sign, rest = match.groups()
        rest = rest.strip()
        release = _release(field, rest)
        if sign == "=":
            parts.append(f"=={rest}")
        elif sign == "^":
            # The first non-zero part is the one whose change may break callers.
            index = next((i for i, n in enumerate(release) if n != 0), len(release) - 1)
            upper = [*release[:index], release[index] + 1]
            parts += [f">={rest}", f"<{'.'.join(map(str, upper))}"]
        else:  # "~": the minor version is fixed (or the major, when only one part is given)
            upper = [release[0] + 1] if len(release) == 1 else [release[0], release[1] + 1]
            parts += [f">={rest}", f"<{'.'.join(map(str, upper))}"]
    return ",".join(parts)


class Requirement:
    """A parsed version requirement; the empty one matches every version.

    Attributes:
        text: the normalised specifier (``""`` for none), as stored with the job.
    """

    __slots__ = ("text", "_spec")

    def __init__(self, text: str, spec: SpecifierSet | None) -> None:
        self.text = text
        self._spec = spec

    def matches(self, version: str) -> bool:
        """Whether a declared version satisfies the requirement (pre-releases included when
        asked for by the requirement's own versions, as pip does)."""
        if self._spec is None:
            return True
        parsed = version_of(version)
        return parsed is not None and self._spec.contains(parsed, prereleases=True)

    def __bool__(self) -> bool:
        return self._spec is not None

    def __repr__(self) -> str:
        return f"Requirement({self.text!r})"


ANY = Requirement("", None)


@functools.lru_cache(maxsize=1024)
def _parse(text: str, field: str) -> Requirement:
    if not text.strip():
        return ANY
    if len(text) > MAX_REQUIREMENT_LENGTH:
        raise InvalidArgument(field, f"must be at most {MAX_REQUIREMENT_LENGTH} characters")
    translated = _translate(field, text)
    try:
        spec = SpecifierSet(translated)
    except InvalidSpecifier:
        raise InvalidArgument(
            field,
            f"{text!r} is not a version requirement; use an exact version (=1.2.0), a caret range "
            "(^1.2), a tilde range (~1.2) or PEP 440 specifiers (>=1.2,<2)",
        ) from None
    return Requirement(str(spec), spec)


def parse_requirement(text: str, field: str = "version") -> Requirement:
    """Parse a job's version requirement.

    Raises:
        InvalidArgument: naming `field`, for text that is no requirement.
    """
    return _parse(text, field)


def stored_requirement(labels: Mapping[str, str]) -> Requirement:
    """The requirement stored with a job (its ``workmesh.version`` label; none: any version)."""
    try:
        return _parse(labels.get(VERSION_LABEL, ""), "version")
    except InvalidArgument:  # validated before it was stored: only a hand-edited row gets here
        return ANY


def order_key(version: str) -> tuple[bool, Version, str]:
    """Sort key of a declared version: PEP 440 order; versions that are not PEP 440 sort below, by text."""
    parsed = version_of(version)
    return (parsed is not None, parsed or Version("0"), version)


def newest(versions: list[str]) -> str | None:
    """The newest of some declared versions (PEP 440 order; others sort below, by text)."""
    if not versions:
        return None
    return max(versions, key=order_key)
