"""The Kafka security settings in the shape faust's App takes them (`broker_credentials`)."""

from __future__ import annotations

from faust.auth import SASLCredentials, SSLCredentials
from faust.types.auth import CredentialsT

from stocksync.config import Settings


def broker_credentials(settings: Settings) -> CredentialsT | None:
    """None for PLAINTEXT."""
    if settings.uses_sasl:
        assert settings.sasl_username is not None and settings.sasl_password is not None
        return SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password.get_secret_value(),
            ssl_context=settings.ssl_context(),
            mechanism=settings.sasl_mechanism,
        )
    if settings.uses_tls:
        return SSLCredentials(settings.ssl_context())
    return None
