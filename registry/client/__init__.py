"""Registry client side: configuration, the registrar that keeps registrations alive, watches."""
