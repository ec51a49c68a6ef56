"""The embedded registry's records: a service instance, a check, their status words. No I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

from workmesh.registry.embedded._decode import CheckDef, ServiceDef

PASSING, WARNING, CRITICAL = "passing", "warning", "critical"
DATACENTER = "dc1"


@dataclass
class Check:
    """A check as the registry holds it."""

    definition: CheckDef
    check_id: str
    name: str
    service_id: str
    service_name: str
    status: str
    output: str = ""
    create_index: int = 0
    modify_index: int = 0
    critical_since: float | None = None  # monotonic time it turned critical
    ttl_deadline: float | None = None  # monotonic time a TTL check expires

    @property
    def kind(self) -> str:
        return self.definition.kind


@dataclass
class Service:
    """A registered service instance."""

    definition: ServiceDef
    create_index: int
    modify_index: int
    check_ids: list[str] = field(default_factory=list)

    @property
    def service_id(self) -> str:
        return self.definition.service_id

    @property
    def name(self) -> str:
        return self.definition.name
