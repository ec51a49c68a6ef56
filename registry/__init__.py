"""workmesh."""
x=1
