"""HTTP surfaces: the admin REST API, auth, the SDK hot paths and observability."""
