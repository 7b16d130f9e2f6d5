"""The gateway's configuration: pydantic models for every key, loaded from YAML with `${ENV}` secrets.

Every mistake is reported as `file:line: key: message`, all of them at once, so an installer fixes a file in one
pass instead of one error per restart.
"""

from __future__ import annotations

import codecs
import os
import re
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.domain.addresses import BrokerAddress, ListenAddress
from gateway.domain.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# `${file:/run/secrets/NAME}`: the contents of a file (Docker and systemd credentials), one trailing newline dropped.
_FILE = re.compile(r"\$\{file:([^}]+)\}")
# A secret file is a password or a key, not a document.
MAX_SECRET_FILE_BYTES = 64 * 1024
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


def parse_duration(value: object) -> object:
    """`30s`, `5m`, `2h`, `1d`, `250ms` or a bare number of seconds → seconds as a float."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m or 2h")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
    raise ValueError(f"expected a duration such as 30s, 5m or 2h, got {value!r}")


Duration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
Identifier = Annotated[str, Field(pattern=_ID)]


def _check_url(value: str | None, schemes: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        raise ValueError(f"expected a {' or '.join(s + '://' for s in schemes)} URL, got {value!r}")
    if not parts.hostname:
        raise ValueError(f"URL has no host: {value!r}")
    try:
        parts.port  # noqa: B018 - urlsplit validates the port lazily, on access
    except ValueError as exc:
        raise ValueError(f"URL has a bad port: {value!r}") from exc
    return value


def check_broker_url(value: str) -> str:
    """An mqtt:// or mqtts:// URL with a host and a sound port (the gateway's broker, its upstream, the center's)."""
    _check_url(value, ("mqtt", "mqtts"))
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SchoolConfig(_Model):
    """The school this gateway serves."""

    id: str = Field(pattern=r"^\d{6,20}$", description="School code (digits), as registered with the bureau")
    name: str = Field(min_length=1, description="School name as the police know it, e.g. 攀枝花市第一小学")
    district: str = Field("", description="City district (区)")
    students: int = Field(0, ge=0, description="Number of students, for the guard-staffing criterion")
    guards: int = Field(0, ge=0, description="Full-time security guards on site")


class StorageConfig(_Model):
    path: Path = Field(Path("var/huxiao.db"), description="SQLite database: outbox, alarms, state history")


class TargetsConfig(_Model):
    networking_rate: float = Field(0.80, ge=0, le=1, description="联网率 target; the city's policy is 80%")


def _pem_file(value: Path | None) -> Path | None:
    """A TLS file must exist and be readable when the config is loaded, not at the first connection."""
    if value is None:
        return None
    if not value.is_file():
        raise ValueError(f"no such file: {str(value)!r}")
    try:
        with value.open("rb") as handle:
            head = handle.read(64 * 1024)
    except OSError as exc:
        raise ValueError(f"cannot read {str(value)!r}: {exc.strerror or exc}") from None
    if b"-----BEGIN " not in head:
        raise ValueError(f"{str(value)!r} is not a PEM file (no -----BEGIN line)")
    return value


class MqttConfig(_Model, BrokerAddress):
    """The broker the school's buttons talk to (usually a Mosquitto on the gateway itself)."""

    url: str = Field("mqtt://127.0.0.1:1883", description="mqtt:// or mqtts:// URL of the button broker")
    username: str | None = None
    password: SecretStr | None = None
    ca: Path | None = Field(
        None, description="PEM CA bundle the broker's certificate must chain to (mqtts://); default the system store"
    )
    cert: Path | None = Field(None, description="PEM client certificate, for brokers that require one")
    key: Path | None = Field(None, description="PEM private key of `cert` (unencrypted); default: inside `cert`")
    topic_prefix: str = Field("huxiao", pattern=r"^[^#+\s]+$", description="First topic level")
    client_id: str | None = Field(None, description="Persistent-session client id; default huxiao-gw-<school>")
    keepalive: Duration = Field(30.0, description="MQTT keepalive; the broker drops a silent client at 1.5×")

    _check = field_validator("url")(check_broker_url)
    _files = field_validator("ca", "cert", "key")(_pem_file)

    @model_validator(mode="after")
    def _tls_consistent(self) -> MqttConfig:
        if not self.tls and (self.ca or self.cert or self.key):
            raise ValueError("ca, cert and key are for TLS: use an mqtts:// url (mqtt:// is clear text)")
        if self.key is not None and self.cert is None:
            raise ValueError("key is given without cert")
        try:
            context = ssl.create_default_context(cafile=str(self.ca) if self.ca else None)
            if self.cert is not None:
                # An empty password: an encrypted key is an error here, not a prompt on the service's terminal.
                context.load_cert_chain(str(self.cert), str(self.key) if self.key else None, password="")
        except (ssl.SSLError, OSError) as exc:
            raise ValueError(f"TLS files unusable: {exc}") from None
        return self


class PollingConfig(_Model):
    interval: Duration = Field(30.0, description="Time between two health rounds of one camera")
    timeout: Duration = Field(5.0, description="Bound on each network wait of one poll")
    offline_after: int = Field(3, ge=1, description="Failed rounds before a camera is called offline")
    refresh_media: Duration = Field(6 * 3600.0, description="Re-read profiles and stream URIs this often")


class PatrolConfig(_Model):
    """Video patrol (视频巡查): frame grabs and picture-quality diagnosis."""

    interval: Duration = Field(600.0, description="Time between patrol rounds")
    busy_interval: Duration = Field(120.0, description="Time between rounds during busy hours")
    busy_hours: list[str] = Field(
        default_factory=lambda: ["07:00-08:30", "11:30-13:30", "16:00-18:00"],
        description="School opening, lunch and closing hours, HH:MM-HH:MM local time",
    )
    # Most of a grab is waiting (for the camera's next key frame after the open), not decoding: on 2 cores, 100
    # streams take 19 s with 4 workers, 5.6 s with 16 and 4.4 s with 32 (bench/patrol.py).
    workers: int = Field(32, ge=1, le=64, description="Frame grabs opened or decoded at once")
    open_timeout: Duration = Field(5.0, description="Bound on opening one stream")
    read_timeout: Duration = Field(5.0, description="Bound on reading one frame")

    @field_validator("busy_hours")
    @classmethod
    def _hours(cls, value: list[str]) -> list[str]:
        for span in value:
            if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d", span):
                raise ValueError(f"expected HH:MM-HH:MM, got {span!r}")
        return value


class CameraConfig(_Model):
    id: Identifier = Field(description="Short unique id, used in topics and URLs")
    name: str = Field(min_length=1, description="Where it looks, in words people use, e.g. 校门口")
    area: str = Field("", description="Key area it covers (entrance, gatehouse, playground...) for compliance")
    onvif: str | None = Field(None, description="ONVIF device service URL")
    username: str | None = None
    password: SecretStr | None = None
    rtsp: str | None = Field(None, description="RTSP stream URI; discovered over ONVIF when absent")
    snapshot: str | None = Field(None, description="HTTP snapshot URI; discovered over ONVIF when absent")
    interval: Duration | None = None
    timeout: Duration | None = None
    offline_after: int | None = Field(None, ge=1)
    maintenance: bool = Field(False, description="Out of service: excluded from uptime and the networking rate")
    quality: dict[str, float] = Field(
        default_factory=dict, description="Picture-quality threshold overrides, e.g. for a dark corridor"
    )
    gb_id: str | None = Field(None, pattern=r"^\d{20}$", description="GB/T 28181 channel id; default derived")

    _onvif = field_validator("onvif", "snapshot")(lambda v: _check_url(v, ("http", "https")))
    _rtsp = field_validator("rtsp")(lambda v: _check_url(v, ("rtsp", "rtsps")))

    @model_validator(mode="after")
    def _reachable_somehow(self) -> CameraConfig:
        if self.onvif is None and self.rtsp is None:
            raise ValueError("a camera needs an onvif URL, an rtsp URL, or both")
        return self


ButtonProfile = Literal["huxiao", "plain", "zigbee2mqtt", "shelly", "tasmota"]


class WindowConfig(_Model):
    """How far a signed press's own `ts` may be from the gateway's clock (SIA DC-09's −40 s/+20 s window)."""

    past: Duration = Field(40.0, description="A press stamped longer ago than this is refused (a replay)")
    future: Duration = Field(20.0, description="A press stamped further ahead than this is refused")


class FloodConfig(_Model):
    """A button pressed again and again: the first `presses` go out, the rest are folded into one flood event."""

    presses: int = Field(5, ge=1, description="Presses forwarded one by one before folding starts")
    within: Duration = Field(10.0, description="Presses this close together count as one flood")


class ButtonConfig(_Model):
    id: Identifier
    name: str = Field(min_length=1, description="The button's place, e.g. 门卫室一键报警")
    location: str = Field("", description="Where exactly it hangs, for the police")
    profile: ButtonProfile = Field("huxiao", description="How the device publishes presses")
    topic: str | None = Field(
        None, description="The device's own base topic (zigbee2mqtt/shelly/tasmota); default by profile"
    )
    cameras: list[Identifier] = Field(default_factory=list, description="Cameras that see this place")
    heartbeat_timeout: Duration = Field(90.0, description="Silence before the button is reported offline")
    gb_id: str | None = Field(None, pattern=r"^\d{20}$", description="GB/T 28181 channel id; default derived")
    secret: SecretStr | None = Field(
        None, description="HMAC key of a signed `huxiao` button: its presses must carry a rising seq and a mac"
    )
    window: WindowConfig = Field(WindowConfig(), description="Accepted distance of a signed press's ts from now")
    flood: FloodConfig = Field(FloodConfig(), description="Folding of a button pressed over and over")

    @model_validator(mode="after")
    def _signed_needs_huxiao(self) -> ButtonConfig:
        if self.secret is not None and self.profile != "huxiao":
            raise ValueError(f"secret works with the huxiao profile only, not {self.profile!r}")
        if self.secret is not None and not self.secret.get_secret_value():
            raise ValueError("secret is empty")
        return self


class _UpstreamBase(_Model):
    name: Identifier
    role: Literal["police", "education", "other"] = Field("police", description="Who receives it")
    retry_first: Duration = Field(0.5, description="First retry delay; doubles after each failure")
    retry_max: Duration = Field(60.0, description="Longest retry delay")


class _ReportingUpstream(_UpstreamBase):
    """An upstream that can also take the gateway's periodic status reports (a command center)."""

    reports: bool = Field(False, description="Send a cn.huxiao.status report every report_every")
    report_every: Duration = Field(30.0, description="Time between two status reports")


class HttpUpstreamConfig(_ReportingUpstream):
    kind: Literal["http"]
    url: str
    secret: SecretStr | None = Field(None, description="HMAC-SHA256 key for X-Huxiao-Signature")
    timeout: Duration = 5.0
    report_url: str | None = Field(None, description="Where reports go; default: url with its last segment `reports`")

    ca: Path | None = Field(
        None, description="PEM CA bundle of a platform with a private CA; https:// is verified always"
    )

    _url = field_validator("url", "report_url")(lambda v: _check_url(v, ("http", "https")))
    _ca = field_validator("ca")(_pem_file)

    @property
    def reports_to(self) -> str:
        """`report_url`, else `url` with its last path segment replaced by `reports` (…/alarms → …/reports)."""
        if self.report_url is not None:
            return self.report_url
        parts = urlsplit(self.url)
        head = parts.path.rsplit("/", 1)[0] if "/" in parts.path else ""
        return parts._replace(path=f"{head}/reports", query="", fragment="").geturl()

    @model_validator(mode="after")
    def _ca_needs_https(self) -> HttpUpstreamConfig:
        if self.ca is not None:
            if urlsplit(self.url).scheme != "https":
                raise ValueError("ca is for TLS: use an https:// url (http:// is clear text)")
            try:
                ssl.create_default_context(cafile=str(self.ca))
            except (ssl.SSLError, OSError) as exc:
                raise ValueError(f"ca unusable: {exc}") from None
        return self


class Gb28181UpstreamConfig(_UpstreamBase):
    kind: Literal["gb28181"]
    server: str = Field(pattern=r"^sip:\d{20}@[^:\s]+(:\d+)?$", description="sip:<server id>@host:port")
    device_id: str = Field(pattern=r"^\d{20}$")
    password: SecretStr | None = None
    transport: Literal["udp", "tcp"] = Field("udp", description="SIP signalling transport")
    local: str | None = Field(
        None, pattern=r"^[^\s:]+:\d{1,5}$", description="SIP bind host:port; default an ephemeral port"
    )
    expires: Duration = 3600.0
    keepalive: Duration = 60.0
    keepalive_misses: int = Field(3, ge=1, description="Unanswered keepalives before the link is down (§9.6.1)")
    charset: str = Field("GB2312", description="Encoding of MANSCDP bodies; GB2312 is what platforms read")

    @field_validator("charset")
    @classmethod
    def _known_charset(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown charset {value!r}") from None
        return value


class MqttUpstreamConfig(_ReportingUpstream, BrokerAddress):
    kind: Literal["mqtt"]
    url: str
    username: str | None = None
    password: SecretStr | None = None
    topic: str = Field("huxiao/events", pattern=r"^[^#+\s]+$", description="Events go to <topic>/<school id>")
    client_id: str | None = Field(None, description="Persistent-session client id; default huxiao-up-<school>-<name>")
    keepalive: Duration = Field(30.0, description="MQTT keepalive; the broker drops a silent client at 1.5×")
    timeout: Duration = Field(5.0, description="Bound on the wait for a PUBACK (delivery) of one event")

    _url = field_validator("url")(check_broker_url)


UpstreamConfig = Annotated[HttpUpstreamConfig | Gb28181UpstreamConfig | MqttUpstreamConfig, Field(discriminator="kind")]


class WebConfig(_Model, ListenAddress):
    listen: str = Field("127.0.0.1:8080", pattern=r"^[^\s:]+:\d{1,5}$", description="host:port")
    tokens: dict[Literal["patrol", "admin"], SecretStr] = Field(
        default_factory=dict, description="Bearer tokens by role: patrol reads, admin also writes"
    )


class GatewayConfig(_Model):
    school: SchoolConfig
    storage: StorageConfig = StorageConfig()
    targets: TargetsConfig = TargetsConfig()
    mqtt: MqttConfig = MqttConfig()
    polling: PollingConfig = PollingConfig()
    patrol: PatrolConfig = PatrolConfig()
    cameras: list[CameraConfig] = Field(default_factory=list)
    buttons: list[ButtonConfig] = Field(default_factory=list)
    upstreams: list[UpstreamConfig] = Field(default_factory=list)
    web: WebConfig = WebConfig()

    @model_validator(mode="after")
    def _cross_references(self) -> GatewayConfig:
        problems = cross_reference_problems(
            [c.id for c in self.cameras],
            [(b.id, list(b.cameras)) for b in self.buttons],
            [u.name for u in self.upstreams],
        )
        if problems:
            raise ValueError("; ".join(message for _, message in problems))
        return self


def cross_reference_problems(
    cameras: list[object], buttons: list[tuple[object, list[object]]], upstreams: list[object]
) -> list[tuple[tuple[str | int, ...], str]]:
    """Duplicate ids and links to unknown cameras, each with the path of the offending item."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for section, key, kind, ids in (
        ("cameras", "id", "camera id", cameras),
        ("buttons", "id", "button id", [b for b, _ in buttons]),
        ("upstreams", "name", "upstream name", upstreams),
    ):
        seen: set[object] = set()
        for index, item in enumerate(ids):
            if not _hashable(item):
                continue  # a list or mapping where an id belongs: its own type error says so, with its line
            if item is not None and item in seen:
                problems.append(((section, index, key), f"duplicate {kind} {item!r}"))
            seen.add(item)
    known = {c for c in cameras if _hashable(c)}
    for index, (button, linked) in enumerate(buttons):
        for position, camera in enumerate(linked):
            if _hashable(camera) and camera not in known:
                problems.append(
                    (("buttons", index, "cameras", position), f"button {button!r} links unknown camera {camera!r}")
                )
    return problems


def _hashable(item: object) -> bool:
    return item is None or isinstance(item, str | int | float)


# Loading: YAML → plain data with a line for every key path → env substitution → pydantic.

Path_ = tuple[str | int, ...]


class _LineMap:
    """The YAML line (1-based) of every key and item, by its path in the document."""

    def __init__(self) -> None:
        self.lines: dict[Path_, int] = {}
        self.duplicates: list[tuple[Path_, int]] = []

    def walk(self, node: yaml.Node, path: Path_) -> None:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                child = (*path, key)
                if key in seen:
                    self.duplicates.append((child, key_node.start_mark.line + 1))
                seen.add(key)
                self.lines[child] = key_node.start_mark.line + 1
                self.walk(value_node, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.walk(item, (*path, index))

    def line_of(self, path: Path_) -> int:
        """The line of the deepest part of `path` that the document has (a missing key: its parent)."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return 1


def _dotted(path: Path_) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top)"


def _substitute(data: Any, path: Path_, env: dict[str, str], missing: list[tuple[Path_, str]]) -> Any:
    if isinstance(data, dict):
        return {k: _substitute(v, (*path, k), env, missing) for k, v in data.items()}
    if isinstance(data, list):
        return [_substitute(v, (*path, i), env, missing) for i, v in enumerate(data)]
    if isinstance(data, str) and "${file:" in data:

        def read(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            try:
                with open(name, "rb") as handle:
                    content = handle.read(MAX_SECRET_FILE_BYTES + 1)
            except OSError as exc:
                missing.append((path, f"file:{name} ({exc.strerror or exc})"))
                return ""
            if len(content) > MAX_SECRET_FILE_BYTES:
                missing.append((path, f"file:{name} (larger than {MAX_SECRET_FILE_BYTES} bytes)"))
                return ""
            try:
                text = content.decode("utf-8")
            except UnicodeDecodeError:
                missing.append((path, f"file:{name} (not UTF-8 text)"))
                return ""
            return text[:-1] if text.endswith("\n") else text

        data = _FILE.sub(read, data)
    if isinstance(data, str) and "${" in data:

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            missing.append((path, name))
            return ""

        return _ENV.sub(replace, data)
    return data


def _pydantic_path(loc: tuple[int | str, ...]) -> Path_:
    """Drop pydantic's discriminator tags (`http`, `gb28181`...) from an error location."""
    out: list[str | int] = []
    for part in loc:
        if isinstance(part, str) and part in ("http", "gb28181", "mqtt") and out and isinstance(out[-1], int):
            continue
        out.append(part)
    return tuple(out)


def _errors(exc: ValidationError, lines: _LineMap, filename: str) -> Iterator[tuple[int, str]]:
    for error in exc.errors(include_url=False):
        path = _pydantic_path(error["loc"])
        if not path:
            continue  # whole-document checks (cross references) are reported from the raw data, with lines
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (check its spelling and indentation)"
        elif error["type"] == "missing":
            message = "required key is missing"
        line = lines.line_of(path)
        yield line, f"{filename}:{line}: {_dotted(path)}: {message}"


def _raw_cross_references(data: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    def items(section: str) -> list[dict[str, Any]]:
        value = data.get(section)
        return [i if isinstance(i, dict) else {} for i in value] if isinstance(value, list) else []

    buttons = []
    for button in items("buttons"):
        linked = button.get("cameras")
        buttons.append((button.get("id"), list(linked) if isinstance(linked, list) else []))
    return cross_reference_problems(
        [c.get("id") for c in items("cameras")], buttons, [u.get("name") for u in items("upstreams")]
    )


def parse_config(text: str, filename: str = "<config>", env: dict[str, str] | None = None) -> GatewayConfig:
    """Validate YAML text into a GatewayConfig, or raise ConfigError listing every mistake with its line."""
    return parse_yaml_model(text, GatewayConfig, filename, env, _raw_cross_references, "`school:`")


_Parsed = TypeVar("_Parsed", bound=BaseModel)


def parse_yaml_model(
    text: str,
    model: type[_Parsed],
    filename: str = "<config>",
    env: dict[str, str] | None = None,
    raw_checks: Callable[[dict[str, Any]], list[tuple[Path_, str]]] | None = None,
    required: str = "a key",
) -> _Parsed:
    """YAML text → `model`, with `${ENV}` substitution and every mistake reported as `file:line: key: message`.

    `raw_checks` looks at the plain data (after substitution) for problems that need a line, such as duplicate
    ids; the `center` config is loaded the same way."""
    env = dict(os.environ) if env is None else env
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{filename}:{line}: YAML syntax error: {problem}"]) from None
    if node is None or data is None:
        raise ConfigError([f"{filename}:1: the file is empty; at least {required} is required"])
    if not isinstance(data, dict):
        raise ConfigError([f"{filename}:1: the top level must be a mapping of keys"])
    lines = _LineMap()
    lines.walk(node, ())
    problems = [
        (line, f"{filename}:{line}: {_dotted(path)}: key appears twice (the later one would silently win)")
        for path, line in lines.duplicates
    ]
    missing: list[tuple[Path_, str]] = []
    data = _substitute(data, (), env, missing)
    for path, name in missing:
        line = lines.line_of(path)
        unset = f"environment variable {name} is not set"
        what = f"secret {name} cannot be read" if name.startswith("file:") else unset
        problems.append((line, f"{filename}:{line}: {_dotted(path)}: {what}"))
    for path, message in raw_checks(data) if raw_checks is not None else []:
        line = lines.line_of(path)
        problems.append((line, f"{filename}:{line}: {_dotted(path)}: {message}"))
    config = None
    try:
        config = model.model_validate(data)
    except ValidationError as exc:
        problems += list(_errors(exc, lines, filename))
    if problems or config is None:
        ordered = sorted(dict.fromkeys(problems), key=lambda p: p[0])
        raise ConfigError([text for _, text in ordered] or [f"{filename}:1: the configuration is not valid"])
    return config


def read_config_text(path: Path) -> str:
    """The file's text, or a ConfigError that names it."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}:1: cannot read the file: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}:1: the file is not UTF-8 text"]) from None


def load_config(path: Path | str, env: dict[str, str] | None = None) -> GatewayConfig:
    """Read and validate a config file; relative storage paths stay relative to the working directory."""
    path = Path(path)
    return parse_config(read_config_text(path), str(path), env)


def secret_values(config: GatewayConfig) -> list[str]:
    """Every secret the configuration holds (passwords, keys, tokens, credentials inside URLs), for the log
    formatter to blank out wherever one would appear."""
    found: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)
        elif isinstance(value, str) and "://" in value:
            password = urlsplit(value).password
            if password:
                found.append(password)

    walk(config)
    # Very short values would blank out ordinary words in the log; such a secret is a config weakness of its own.
    return sorted({v for v in found if len(v) >= 4}, key=len, reverse=True)
