"""The public API of workmesh.registry is pinned: changing it is a deliberate act."""

import workmesh.registry as registry


def test_exported_names_are_pinned():
    assert sorted(registry.__all__) == sorted(
        [
            "WORKFLOW_TAG",
            "EmbeddedRegistry",
            "Instance",
            "Registrar",
            "RegistryConfig",
            "ServiceRegistration",
            "ServiceWatch",
            "find_service",
            "run_embedded_registry",
            "service_name",
        ]
    )


def test_every_exported_name_exists_and_has_a_docstring():
    for name in registry.__all__:
        obj = getattr(registry, name)
        if callable(obj):
            assert obj.__doc__, f"{name} has no docstring"
