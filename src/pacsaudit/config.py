"""Scan settings: defaults, then a TOML file and `PACSAUDIT_*` variables, then command-line options.

`ScanSettings` is a plain model, so a scan that names no config file never imports
pydantic-settings (a fifth of the start-up time); `load_settings` brings it in when needed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["DEFAULT_PORTS", "DEFAULT_WEB_PORTS", "DICOM_TLS_PORTS", "ScanSettings", "load_settings"]

DEFAULT_PORTS: tuple[int, ...] = (104, 11112, 4242, 2761, 2762)
"""DICOM (104, 11112), Orthanc's default (4242), DICOM ISCL (2761) and DICOM over TLS (2762)."""

DICOM_TLS_PORTS: frozenset[int] = frozenset({2762})
"""IANA's DICOM over TLS port, where TLS is tried first (2761 is DICOM ISCL, not TLS)."""
DEFAULT_WEB_PORTS: tuple[int, ...] = (80, 443, 3000, 8000, 8042, 8080, 8081, 8443, 9090)
"""Ports probed over HTTP(S) when scanned (never added to the scan by themselves): web servers,
Orthanc's REST API (8042), OHIF's development server (3000), dcm4chee-arc (8080, 8443)."""

_AE_CHARS = set(
    " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~"
)


def _check_ae(value: str) -> str:
    if not 0 < len(value.strip()) <= 16 or any(ch not in _AE_CHARS or ch == "\\" for ch in value):
        raise ValueError(f"not a valid AE title (1-16 printable characters, no backslash): {value!r}")
    return value.strip()


class ScanSettings(BaseModel):
    """Every knob of a scan. Timeouts are seconds; `rate` 0 means unlimited."""

    model_config = ConfigDict(extra="forbid")

    ports: list[int] = Field(default_factory=lambda: list(DEFAULT_PORTS))
    timeout: float = Field(default=5.0, gt=0)
    """Bound on a TCP connect and on each PDU read."""
    deadline: float = Field(default=20.0, gt=0)
    """Bound on all the work for one endpoint, AE-title search included."""
    concurrency: int = Field(default=512, ge=1)
    per_host: int = Field(default=4, ge=1)
    """At most this many connections open to one IP at once."""
    rate: float = Field(default=1000.0, ge=0)
    """New connections per second, over the whole scan (0: unlimited)."""
    calling_ae: str = "PACSAUDIT"
    """Calling AE title for follow-up associations; it identifies the tool to the owner."""
    called_ae: list[str] = Field(default_factory=list)
    """Called AE titles the user knows of, tried before the dictionary."""
    ae_dictionary: bool = True
    max_ae_attempts: int = Field(default=48, ge=1)
    """Associations one endpoint may be asked for, the stranger test included."""
    ae_pause: float = Field(default=0.05, ge=0)
    """Pause between two association attempts on one endpoint."""
    busy_retry_pause: float = Field(default=1.0, ge=0)
    """Pause before the one retry after a transient (busy) rejection."""
    max_pdu_length: int = Field(default=65536, ge=4096)
    """The maximum PDU length pacsaudit announces, and the bound on P-DATA it accepts."""
    census: bool = False
    """Count what a stranger can enumerate through C-FIND (patients, studies, series, instances)."""
    max_queries: int = Field(default=300, ge=1)
    """C-FIND requests one endpoint's census may send."""
    query_pause: float = Field(default=0.05, ge=0)
    """Pause between two C-FIND requests to one endpoint."""
    census_time: float = Field(default=300.0, gt=0)
    """Seconds one endpoint's census may take; the endpoint deadline grows by this much."""
    max_answers: int = Field(default=2_000_000, ge=1)
    """C-FIND answers one endpoint's census may read in total."""
    max_answers_per_query: int = Field(default=20_000, ge=1)
    """Answers read from one C-FIND before a C-CANCEL (a server streaming endlessly is cut off here)."""
    web_ports: list[int] = Field(default_factory=lambda: list(DEFAULT_WEB_PORTS))
    """Scanned ports that get the HTTP(S) probe; `-p` still decides which ports are scanned."""
    http_max_requests: int = Field(default=40, ge=1)
    """HTTP requests one endpoint's web probe may send, besides its census (bounded by `max_queries`)."""
    try_default_credentials: bool = False
    """Try each vendor-documented default login once, only where a PACS web service demanded one."""
    workers: int = Field(default=1, ge=1, le=256)
    """Processes to scan with (one event loop each); concurrency and rate are shared among them."""
    emit_all: bool = False
    """Also emit closed and filtered ports."""
    asn_database: Path | None = None
    """A GeoLite2-ASN or DB-IP ASN Lite MMDB file: AS number and organisation of every result."""
    cost_per_record: float | None = Field(default=None, ge=0)
    """Reports' cost estimate: cost per exposed patient record (None: the documented default)."""
    cost_per_ssn_record: float | None = Field(default=None, ge=0)
    """Reports' cost estimate: cost per exposed record with an SSN-shaped identifier."""

    @property
    def endpoint_budget(self) -> float:
        """Seconds all the work on one endpoint may take: the deadline, plus the census's time."""
        return self.deadline + (self.census_time if self.census else 0.0)

    @field_validator("calling_ae")
    @classmethod
    def _valid_calling(cls, value: str) -> str:
        return _check_ae(value)

    @field_validator("called_ae")
    @classmethod
    def _valid_called(cls, value: list[str]) -> list[str]:
        return [_check_ae(v) for v in value]

    @field_validator("ports")
    @classmethod
    def _valid_ports(cls, value: list[int]) -> list[int]:
        if not value or any(not 0 < p < 65536 for p in value):
            raise ValueError("ports must be 1-65535")
        return value

    @field_validator("web_ports")
    @classmethod
    def _valid_web_ports(cls, value: list[int]) -> list[int]:
        if any(not 0 < p < 65536 for p in value):
            raise ValueError("web ports must be 1-65535")
        return value


def load_settings(config_file: Path | None = None, **overrides: Any) -> ScanSettings:
    """Settings from `config_file` (TOML) and `PACSAUDIT_*` variables; `overrides` (CLI options) win."""
    values = {k: v for k, v in overrides.items() if v is not None}
    if config_file is None and not any(
        f"PACSAUDIT_{name.upper()}" in os.environ for name in ScanSettings.model_fields
    ):
        return ScanSettings(**values)
    from pydantic_settings import (
        BaseSettings,
        PydanticBaseSettingsSource,
        SettingsConfigDict,
        TomlConfigSettingsSource,
    )

    class FromFileAndEnvironment(ScanSettings, BaseSettings):
        model_config = SettingsConfigDict(extra="forbid", env_prefix="PACSAUDIT_")

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
            if config_file is not None:
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
            return tuple(sources)

    loaded = FromFileAndEnvironment(**values)
    return ScanSettings.model_validate(loaded.model_dump())
