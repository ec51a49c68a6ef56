"""The embedded registry's catalog as Consul renders it: the JSON of agent, catalog and health reads.

A mixin of :class:`~workmesh.registry.embedded._state.RegistryState`, which holds the data; only
the shapes of Consul's responses live here. No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from workmesh.registry.embedded._model import DATACENTER, PASSING, Check, Service


class CatalogViews:
    """Consul-shaped reads of the services and checks a :class:`RegistryState` holds."""

    node_name: str
    node_address: str
    node_id: str
    services: dict[str, Service]
    checks: dict[str, Check]
    _by_name: dict[str, dict[str, Service]]

    def node_json(self) -> dict[str, Any]:
        addr = self.node_address
        return {
            "ID": self.node_id,
            "Node": self.node_name,
            "Address": addr,
            "Datacenter": DATACENTER,
            "TaggedAddresses": {"lan": addr, "lan_ipv4": addr, "wan": addr, "wan_ipv4": addr},
            "Meta": {"consul-network-segment": ""},
            "CreateIndex": 1,
            "ModifyIndex": 1,
        }

    def _serf_json(self) -> dict[str, Any]:
        # Consul attaches the node's serfHealth check to every health entry.
        return {
            "Node": self.node_name,
            "CheckID": "serfHealth",
            "Name": "Serf Health Status",
            "Status": PASSING,
            "Notes": "",
            "Output": "Agent alive and reachable",
            "ServiceID": "",
            "ServiceName": "",
            "ServiceTags": [],
            "Type": "",
            "Interval": "",
            "Timeout": "",
            "ExposedPort": 0,
            "Definition": {},
            "CreateIndex": 1,
            "ModifyIndex": 1,
        }

    def check_json(self, check: Check) -> dict[str, Any]:
        service = self.services.get(check.service_id)
        cdef = check.definition
        return {
            "Node": self.node_name,
            "CheckID": check.check_id,
            "Name": check.name,
            "Status": check.status,
            "Notes": cdef.notes,
            "Output": check.output,
            "ServiceID": check.service_id,
            "ServiceName": check.service_name,
            "ServiceTags": list(service.definition.tags) if service else [],
            "Type": cdef.kind,
            "Interval": cdef.interval_text,
            "Timeout": cdef.timeout_text,
            "ExposedPort": 0,
            "Definition": {},
            "CreateIndex": check.create_index,
            "ModifyIndex": check.modify_index,
        }

    @staticmethod
    def _service_fields(service: Service) -> dict[str, Any]:
        sdef = service.definition
        fields = {
            "ID": sdef.service_id,
            "Service": sdef.name,
            "Tags": list(sdef.tags),
            "Meta": dict(sdef.meta),
            "Port": sdef.port,
            "Address": sdef.address,
            "Weights": {"Passing": sdef.weights[0], "Warning": sdef.weights[1]},
            "EnableTagOverride": sdef.enable_tag_override,
        }
        if sdef.tagged_addresses:  # Consul leaves the field out when empty
            fields["TaggedAddresses"] = {
                tag: {"Address": address, "Port": port} for tag, (address, port) in sdef.tagged_addresses.items()
            }
        return fields

    def agent_services(self) -> dict[str, Any]:
        return {sid: {**self._service_fields(s), "Datacenter": DATACENTER} for sid, s in self.services.items()}

    def agent_checks(self) -> dict[str, Any]:
        return {cid: self.check_json(c) for cid, c in self.checks.items()}

    def catalog_services(self) -> dict[str, list[str]]:
        """Service name -> the union of its instances' tags (sorted, unique), like Consul."""
        return {
            name: sorted({t for s in instances.values() for t in s.definition.tags})
            for name, instances in sorted(self._by_name.items())
        }

    def _instances(self, name: str, tags: Iterable[str]) -> list[Service]:
        wanted = set(tags)
        return [s for _, s in sorted(self._by_name.get(name, {}).items()) if wanted <= set(s.definition.tags)]

    def catalog_service(self, name: str, tags: Iterable[str] = ()) -> list[dict[str, Any]]:
        node = self.node_json()
        out = []
        for s in self._instances(name, tags):
            fields = self._service_fields(s)
            out.append(
                {
                    "ID": node["ID"],
                    "Node": node["Node"],
                    "Address": node["Address"],
                    "Datacenter": DATACENTER,
                    "TaggedAddresses": node["TaggedAddresses"],
                    "NodeMeta": node["Meta"],
                    "ServiceID": fields["ID"],
                    "ServiceName": fields["Service"],
                    "ServiceTags": fields["Tags"],
                    "ServiceAddress": fields["Address"],
                    "ServiceMeta": fields["Meta"],
                    "ServicePort": fields["Port"],
                    "ServiceWeights": fields["Weights"],
                    "ServiceTaggedAddresses": fields.get("TaggedAddresses", {}),
                    "ServiceEnableTagOverride": fields["EnableTagOverride"],
                    "CreateIndex": s.create_index,
                    "ModifyIndex": s.modify_index,
                }
            )
        return out

    def health_service(self, name: str, *, passing: bool = False, tags: Iterable[str] = ()) -> list[dict[str, Any]]:
        node, serf = self.node_json(), self._serf_json()
        node_checks = [c for c in self.checks.values() if not c.service_id]
        out = []
        for s in self._instances(name, tags):
            checks = node_checks + [self.checks[cid] for cid in s.check_ids if cid in self.checks]
            if passing and any(c.status != PASSING for c in checks):
                continue
            out.append(
                {
                    "Node": node,
                    "Service": self._service_fields(s) | {"CreateIndex": s.create_index, "ModifyIndex": s.modify_index},
                    "Checks": [serf, *(self.check_json(c) for c in checks)],
                }
            )
        return out

    def health_checks(self, name: str) -> list[dict[str, Any]]:
        """The checks of every instance of service `name` (``/v1/health/checks/<name>``)."""
        return [
            self.check_json(self.checks[cid])
            for s in self._instances(name, ())
            for cid in s.check_ids
            if cid in self.checks
        ]
