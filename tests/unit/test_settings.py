"""The settings object: environment over a YAML settings file over defaults; Kafka security
settings turned into client configs; every error names the STOCKSYNC_ key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from stocksync.config import ConfigError, load_settings
from stocksync.streams.credentials import broker_credentials

SECURITY_VARS = (
    "STOCKSYNC_SECURITY_PROTOCOL",
    "STOCKSYNC_SASL_MECHANISM",
    "STOCKSYNC_SASL_USERNAME",
    "STOCKSYNC_SASL_PASSWORD",
    "STOCKSYNC_SSL_CA_FILE",
    "STOCKSYNC_SSL_CERT_FILE",
    "STOCKSYNC_SSL_KEY_FILE",
    "STOCKSYNC_CONFIG_FILE",
    "STOCKSYNC_API_KEYS_FILE",
    "STOCKSYNC_PARTITIONS",
    "STOCKSYNC_BOOTSTRAP_SERVERS",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in SECURITY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env file from the developer's checkout


def error_of(**settings: object) -> str:
    with pytest.raises(ConfigError) as raised:
        load_settings(**settings)
    return str(raised.value)


def pem(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    return path


# --- defaults and the plain case -------------------------------------------------------------


def test_plaintext_is_the_default_and_adds_nothing_to_client_configs() -> None:
    settings = load_settings(bootstrap_servers="kafka:9092")
    assert settings.librdkafka_config() == {
        "bootstrap.servers": "kafka:9092",
        "security.protocol": "plaintext",
    }
    assert broker_credentials(settings) is None


# --- SASL/SCRAM and TLS -----------------------------------------------------------------------


def test_sasl_ssl_with_scram_gives_librdkafka_and_faust_their_settings(tmp_path: Path) -> None:
    ca = pem(tmp_path, "ca.pem")
    settings = load_settings(
        security_protocol="sasl_ssl",
        sasl_mechanism="scram_sha_256",
        sasl_username="stocksync-worker",
        sasl_password="s3cret",
        ssl_ca_file=ca,
    )
    assert settings.librdkafka_config() == {
        "bootstrap.servers": "127.0.0.1:9092",
        "security.protocol": "sasl_ssl",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "stocksync-worker",
        "sasl.password": "s3cret",
        "ssl.ca.location": str(ca),
    }
    assert "s3cret" not in repr(settings)  # a SecretStr never prints


def test_faust_credentials_follow_the_protocol() -> None:
    from faust.auth import SASLCredentials, SSLCredentials

    sasl = broker_credentials(
        load_settings(security_protocol="SASL_SSL", sasl_username="u", sasl_password="p")
    )
    assert isinstance(sasl, SASLCredentials)
    assert (sasl.username, sasl.password, sasl.mechanism.value) == ("u", "p", "SCRAM-SHA-512")
    assert sasl.protocol.value == "SASL_SSL" and sasl.ssl_context is not None
    plain = broker_credentials(
        load_settings(security_protocol="SASL_PLAINTEXT", sasl_username="u", sasl_password="p")
    )
    assert isinstance(plain, SASLCredentials) and plain.protocol.value == "SASL_PLAINTEXT"
    tls = broker_credentials(load_settings(security_protocol="SSL"))
    assert isinstance(tls, SSLCredentials)


def test_mutual_tls_files_go_to_librdkafka(tmp_path: Path) -> None:
    settings = load_settings(
        security_protocol="SSL",
        ssl_cert_file=pem(tmp_path, "client.pem"),
        ssl_key_file=pem(tmp_path, "client.key"),
    )
    config = settings.librdkafka_config()
    assert config["ssl.certificate.location"].endswith("client.pem")
    assert config["ssl.key.location"].endswith("client.key")


def test_sasl_without_username_or_password_names_both_keys_and_the_fix() -> None:
    message = error_of(security_protocol="SASL_SSL")
    assert "STOCKSYNC_SASL_USERNAME: required when STOCKSYNC_SECURITY_PROTOCOL=SASL_SSL" in message
    assert "STOCKSYNC_SASL_PASSWORD: required" in message
    assert "SCRAM-SHA-512 credentials" in message


def test_sasl_credentials_without_a_sasl_protocol_say_which_protocol_to_set() -> None:
    message = error_of(sasl_username="u", sasl_password="p")
    assert "STOCKSYNC_SASL_USERNAME: set, but STOCKSYNC_SECURITY_PROTOCOL=PLAINTEXT" in message
    assert "set STOCKSYNC_SECURITY_PROTOCOL=SASL_SSL" in message
    assert "'p'" not in message  # the password is never echoed


def test_an_unknown_protocol_or_mechanism_lists_the_choices() -> None:
    message = error_of(security_protocol="TLS")
    assert message.count("STOCKSYNC_SECURITY_PROTOCOL:") == 1
    assert "'SASL_SSL'" in message
    message = error_of(security_protocol="SASL_SSL", sasl_mechanism="MD5", sasl_username="u")
    assert "STOCKSYNC_SASL_MECHANISM:" in message and "SCRAM-SHA-256" in message


def test_a_missing_tls_file_names_the_key(tmp_path: Path) -> None:
    message = error_of(security_protocol="SSL", ssl_ca_file=tmp_path / "nope.pem")
    assert f"STOCKSYNC_SSL_CA_FILE: {tmp_path / 'nope.pem'} is not a file" in message


def test_tls_files_without_tls_and_a_cert_without_its_key_are_refused(tmp_path: Path) -> None:
    message = error_of(ssl_ca_file=pem(tmp_path, "ca.pem"))
    assert "STOCKSYNC_SSL_CA_FILE: set, but STOCKSYNC_SECURITY_PROTOCOL=PLAINTEXT" in message
    message = error_of(security_protocol="SSL", ssl_cert_file=pem(tmp_path, "c.pem"))
    assert "STOCKSYNC_SSL_KEY_FILE: mutual TLS needs both" in message


def test_the_environment_names_the_variable_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCKSYNC_PARTITIONS", "eight")
    message = error_of()
    assert "STOCKSYNC_PARTITIONS: Input should be a valid integer" in message
    assert "(got 'eight')" in message
    assert "expected: Partitions of event topics" in message


# --- the settings file ------------------------------------------------------------------------


def test_settings_come_from_the_file_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "stocksync.yaml"
    path.write_text("bootstrap_servers: kafka-1:9093\nSTOCKSYNC_PARTITIONS: 12\nhttp_port: 9000\n")
    monkeypatch.setenv("STOCKSYNC_CONFIG_FILE", str(path))
    monkeypatch.setenv("STOCKSYNC_PARTITIONS", "16")
    settings = load_settings()
    assert settings.bootstrap_servers == "kafka-1:9093"
    assert settings.http_port == 9000
    assert settings.partitions == 16  # the environment wins over the file


def test_an_unknown_key_in_the_file_is_named_with_the_known_ones(tmp_path: Path) -> None:
    path = tmp_path / "stocksync.yaml"
    path.write_text("bootstap_servers: kafka:9092\n")
    message = error_of(config_file=path)
    assert f"STOCKSYNC_CONFIG_FILE: {path} has an unknown setting 'bootstap_servers'" in message
    assert "bootstrap_servers" in message.split("known settings:")[1]


def test_a_bad_value_in_the_file_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "stocksync.yaml"
    path.write_text("partitions: 0\n")
    assert "STOCKSYNC_PARTITIONS: Input should be greater than or equal to 1" in error_of(
        config_file=path
    )


def test_a_missing_or_broken_settings_file_says_so(tmp_path: Path) -> None:
    assert "does not exist" in error_of(config_file=tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("partitions: [\n")
    assert f"STOCKSYNC_CONFIG_FILE: {broken} is not valid YAML" in error_of(config_file=broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    assert "must be a mapping of setting: value" in error_of(config_file=listed)
