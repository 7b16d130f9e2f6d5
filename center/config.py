"""The center's configuration (`huxiao center -c FILE`): one pydantic model per section, loaded like the gateway's.

Every mistake is reported as `file:line: key: message` by the gateway's own loader, so both files read alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, field_validator

from gateway.domain.addresses import BrokerAddress, ListenAddress
from gateway.domain.config import Path_, check_broker_url, parse_yaml_model, read_config_text


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ListenConfig(_Model, ListenAddress):
    listen: str = Field("127.0.0.1:9000", pattern=r"^[^\s:]+:\d{1,5}$", description="host:port of the center")
    public_url: str | None = Field(None, description="The address gateways and browsers use to reach the center")


class CenterStorageConfig(_Model):
    url: str = Field(
        "sqlite:///var/huxiao-center.db",
        description="sqlite:///relative.db, sqlite:////abs/path.db or postgresql://user:pass@host:port/db",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        scheme = urlsplit(value).scheme
        if scheme == "sqlite":
            if not value.startswith("sqlite:///") or len(value) <= len("sqlite:///"):
                raise ValueError(f"expected sqlite:///path.db (or sqlite:////abs/path.db), got {value!r}")
        elif scheme in ("postgresql", "postgres"):
            if not urlsplit(value).path.strip("/"):
                raise ValueError("a postgresql URL needs a database name: postgresql://user:pass@host/db")
        else:
            raise ValueError(f"expected a sqlite:/// or postgresql:// URL, got scheme {scheme!r}")
        return value


class CityTargets(_Model):
    networking_rate: float = Field(0.80, ge=0, le=1, description="联网率 target for the city")
    compliant_share: float = Field(0.80, ge=0, le=1, description="达标率: the share of schools that are compliant")


class SchoolEntry(_Model):
    id: str = Field(pattern=r"^\d{6,20}$", description="School code, the `<id>` in the gateway's source huxiao/<id>")
    name: str = Field(min_length=1)
    district: str = Field("", description="City district (区)")
    secret: SecretStr | None = Field(None, description="The HMAC secret its gateway signs with (http intake)")


class CenterMqttConfig(_Model, BrokerAddress):
    url: str = Field("mqtt://127.0.0.1:1883", description="The central broker (or one node of the cluster)")
    username: str | None = None
    password: SecretStr | None = None
    topic: str = Field("huxiao/events", pattern=r"^[^#+\s]+$", description="The gateways' upstream `topic`")
    share: str = Field("center", pattern=r"^[^/#+\s]+$", description="Shared-subscription group of the instances")

    _url = field_validator("url")(check_broker_url)


class CenterWebConfig(_Model):
    tokens: dict[Literal["duty", "admin"], SecretStr] = Field(
        default_factory=dict, description="Bearer tokens by role: duty reads and acknowledges, admin also hazards"
    )


class CenterConfig(_Model):
    center: ListenConfig = ListenConfig()
    storage: CenterStorageConfig = CenterStorageConfig()
    targets: CityTargets = CityTargets()
    schools: list[SchoolEntry] = Field(default_factory=list)
    mqtt: CenterMqttConfig | None = None
    web: CenterWebConfig = CenterWebConfig()

    _by_id: dict[str, SchoolEntry] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        self._by_id = {s.id: s for s in self.schools}

    def school(self, school_id: str) -> SchoolEntry | None:
        return self._by_id.get(school_id)


def _duplicate_schools(data: dict[str, Any]) -> list[tuple[Path_, str]]:
    schools = data.get("schools")
    problems: list[tuple[Path_, str]] = []
    seen: set[object] = set()
    for index, school in enumerate(schools if isinstance(schools, list) else []):
        school_id = school.get("id") if isinstance(school, dict) else None
        if school_id is not None and school_id in seen:
            problems.append((("schools", index, "id"), f"duplicate school id {school_id!r}"))
        seen.add(school_id)
    return problems


def parse_center_config(text: str, filename: str = "<config>", env: dict[str, str] | None = None) -> CenterConfig:
    return parse_yaml_model(text, CenterConfig, filename, env, _duplicate_schools, "`schools:`")


def load_center_config(path: Path | str, env: dict[str, str] | None = None) -> CenterConfig:
    path = Path(path)
    return parse_center_config(read_config_text(path), str(path), env)
