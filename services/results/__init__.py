"""workmesh."""
