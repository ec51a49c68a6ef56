"""Certificates for the TLS tests: the throwaway CA of :mod:`workmesh.services.core.pki`."""

from workmesh.services.core.pki import CA, Pair

__all__ = ["CA", "Pair"]
