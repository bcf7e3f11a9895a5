"""What a user writes in a topology file, as pydantic models.

These models check shape and single values only; cross-references (links to
nodes and networks), defaults and address allocation live in expand.py. Field
descriptions feed the editor JSON Schema (schema.py), so write them for users.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
)

from lab.field_errors import FieldError, matching
from lab.images.recipe import NAME_PATTERN as IMAGE_PATTERN
from lab.source import VARIABLE_NAME, VARIABLE_RULE
from lab.text import kind_of, shown

# Names end up in libvirt object names, interface configs and shell commands:
# a closed alphabet means they never need quoting anywhere.
NAME_PATTERN = r"^[a-z][a-z0-9-]{0,15}$"
ROLE_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,31}$"

DEFAULT_IMAGE = "debian-11"
DEFAULT_MEMORY = 256
DEFAULT_VCPUS = 1


Name = Annotated[str, matching(
    NAME_PATTERN, "name", "1-16 characters: a-z, 0-9 and '-', starting with a letter"),
    Field(json_schema_extra={"pattern": NAME_PATTERN})]
ImageName = Annotated[str, matching(
    IMAGE_PATTERN, "image name", "an image recipe name such as debian-11"),
    Field(json_schema_extra={"pattern": IMAGE_PATTERN})]
Role = Annotated[str, matching(
    ROLE_PATTERN, "role", "a short identifier such as client or server"),
    Field(json_schema_extra={"pattern": ROLE_PATTERN})]
# Below 128 MiB a guest does not boot (80) or cannot hold the trace buffers (96).
Memory = Annotated[int, Field(strict=True, ge=128, le=16384)]
Vcpus = Annotated[int, Field(strict=True, ge=1, le=8)]

Net = TypeVar("Net", IPv4Network, IPv6Network)
Addr = TypeVar("Addr", IPv4Address, IPv6Address)
# (family, example) for messages
_NET_WORDS = {IPv4Network: ("IPv4", "10.0.1.0/24"), IPv6Network: ("IPv6", "fd00:0:0:1::/64")}
_ADDR_WORDS = {IPv4Address: ("IPv4", "10.0.1.10"), IPv6Address: ("IPv6", "fd00:0:0:1::10")}


def _subnet(cls: type[Net], max_prefix: int) -> Callable[[Any], Net | bool]:
    """Omitted/null/true: allocate one; false: this family is off; else a subnet."""
    family, example = _NET_WORDS[cls]

    def parse(value: Any) -> Net | bool:
        if value is None or isinstance(value, bool):
            return value is not False
        if not isinstance(value, str) or "/" not in value:
            raise FieldError(f"expected an {family} subnet, got {kind_of(value)}",
                             hint=f"write ADDRESS/PREFIX like {example}, or false to disable")
        try:
            net = cls(value)
        except ValueError:
            try:
                loose = cls(value, strict=False)
            except ValueError:
                raise FieldError(f"{shown(value)} is not an {family} subnet",
                                 hint=f"write ADDRESS/PREFIX like {example}") from None
            raise FieldError(f"{value} has host bits set",
                             hint=f"did you mean {loose}?") from None
        if net.prefixlen > max_prefix:
            raise FieldError(f"{net} is too small for a lab network",
                             hint=f"use a prefix of /{max_prefix} or shorter")
        if net.is_multicast or net.is_loopback or net.is_link_local or net.is_unspecified \
                or net.is_reserved:
            raise FieldError(f"{net} is a special-purpose range",
                             hint=f"use a private range such as {example}")
        return net
    return parse


def _address(cls: type[Addr]) -> Callable[[Any], Addr | None]:
    family, example = _ADDR_WORDS[cls]

    def parse(value: Any) -> Addr | None:
        if value is None:
            return None
        if isinstance(value, str) and "/" in value:
            raise FieldError(f"{value} has a prefix length",
                             hint="give the address alone; the prefix comes from the network")
        try:
            if isinstance(value, str):
                return cls(value)
        except ValueError:
            pass
        raise FieldError(f"{kind_of(value)} is not an {family} address", hint=f"e.g. {example}")
    return parse


Subnet4 = Annotated[IPv4Network | bool, PlainValidator(
    _subnet(IPv4Network, 30), json_schema_input_type=IPv4Network | bool | None)]
Subnet6 = Annotated[IPv6Network | bool, PlainValidator(
    _subnet(IPv6Network, 126), json_schema_input_type=IPv6Network | bool | None)]
Address4 = Annotated[IPv4Address | None, PlainValidator(
    _address(IPv4Address), json_schema_input_type=IPv4Address | None)]
Address6 = Annotated[IPv6Address | None, PlainValidator(
    _address(IPv6Address), json_schema_input_type=IPv6Address | None)]


def null_is_empty(value: Any) -> Any:
    """A key written with no value (YAML null) as an empty mapping."""
    return {} if value is None else value


def _literal(value: Any) -> Any:
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        raise FieldError("a variable's value is taken as written, not as a template",
                         hint="write the template where the variable is used")
    return value


VariableName = Annotated[str, matching(VARIABLE_NAME, "variable name", VARIABLE_RULE)]
# `vars:`: a template names each variable, whose value it takes as written.
Variables = Annotated[dict[VariableName, Annotated[Any, AfterValidator(_literal)]],
                      BeforeValidator(null_is_empty, json_schema_input_type=dict[str, Any] | None)]


def null_is_no_items(value: Any) -> Any:
    """A key written with no value (YAML null) as an empty list."""
    return () if value is None else value


def _endpoint(value: Any) -> Any:
    if isinstance(value, str):
        return {"node": value}
    if isinstance(value, dict):
        return value
    raise FieldError(f"expected a node name or a mapping, got {kind_of(value)}",
                     hint="write NODE or {node: NODE, ipv4: ADDRESS, ipv6: ADDRESS}")


class _Input(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NodeSettings(_Input):
    """Node settings that `defaults:` may give to every node."""

    image: ImageName | None = Field(
        default=None, description=f"Guest image recipe (default: {DEFAULT_IMAGE}).")
    memory: Memory | None = Field(
        default=None, description=f"Guest RAM in MiB, 128-16384 (default: {DEFAULT_MEMORY}).")
    vcpus: Vcpus | None = Field(
        default=None, description=f"Virtual CPUs, 1-8 (default: {DEFAULT_VCPUS}).")


class NodeInput(NodeSettings):
    """One guest machine. Unset fields come from `defaults:`, then built-in defaults."""

    role: Role | None = Field(
        default=None, description="What the node is for (client, server, router...); "
                          "playbooks can select nodes by role. A router forwards packets, "
                          "and the other nodes reach the networks they are not on "
                          "through it.")
    # Per-node debug options (gdbstub, nokaslr) will go here.


class NetworkInput(_Input):
    """An isolated layer-2 network (a host bridge with no host address)."""

    ipv4: Subnet4 = Field(
        default=True, description="IPv4 subnet such as 10.0.1.0/24; omit (or true) to allocate "
                          "10.77.N.0/24; false for no IPv4.")
    ipv6: Subnet6 = Field(
        default=True, description="IPv6 subnet such as fd00:0:0:1::/64; omit (or true) to allocate "
                          "fd77:0:0:N::/64; false for no IPv6.")


class EndpointInput(_Input):
    """A node's attachment to a link's network, optionally with fixed addresses."""

    node: Name = Field(description="Node name, as under nodes:.")
    ipv4: Address4 = Field(default=None, description="Fixed IPv4 address (no prefix); "
                                             "default: the next free one.")
    ipv6: Address6 = Field(default=None, description="Fixed IPv6 address (no prefix); "
                                             "default: the next free one.")


# `client:` with nothing after it means "all defaults"; likewise for sections.
NodeEntry = Annotated[NodeInput, BeforeValidator(
    null_is_empty, json_schema_input_type=NodeInput | None)]
NetworkEntry = Annotated[NetworkInput, BeforeValidator(
    null_is_empty, json_schema_input_type=NetworkInput | None)]
Endpoint = Annotated[EndpointInput, BeforeValidator(
    _endpoint, json_schema_input_type=Name | EndpointInput)]


class LinkInput(_Input):
    """Attaches nodes to a network; each node gets one interface per link."""

    network: Name = Field(description="Network name, as under networks:.")
    nodes: tuple[Endpoint, ...] = Field(
        min_length=1, description="Nodes to attach: NODE or {node: NODE, ipv4: ..., ipv6: ...}.")


class TopologyInput(_Input):
    """A socklab topology: machines, networks, and the links between them."""

    model_config = ConfigDict(title="socklab topology")
    # Missing or faulty, the rest of the file is still checked, as if it were this.
    STAND_INS: ClassVar[Mapping[str, str]] = {"name": "unnamed"}
    # A playbook's fields, given here: the hint an unknown one gets.
    ELSEWHERE: ClassVar[Mapping[str, str]] = dict.fromkeys(
        ("steps", "expect", "tracers", "description"),
        "a playbook's field: a playbook is a file of its own, given to lab run after "
        "the topology")

    name: Name = Field(description="Lab name; prefixes every libvirt object of the lab.")
    vars: Variables = Field(
        default_factory=dict,
        description="Variables for {{ templates }} in string values; "
                    "--set KEY=VALUE overrides them.")
    defaults: Annotated[NodeSettings, BeforeValidator(
        null_is_empty, json_schema_input_type=NodeSettings | None)] = Field(
        default=NodeSettings(),
        description="Settings for every node that does not set them itself.")
    nodes: dict[Name, NodeEntry] = Field(
        min_length=1, description="Guest machines by name, in boot and interface order.")
    networks: Annotated[dict[Name, NetworkEntry], BeforeValidator(
        null_is_empty, json_schema_input_type=dict[Name, NetworkEntry] | None)] = Field(
        default_factory=dict, description="Isolated networks by name.")
    links: Annotated[tuple[LinkInput, ...], BeforeValidator(
        null_is_no_items, json_schema_input_type=list[LinkInput] | None)] = Field(
        default=(), description="Attachments of nodes to networks, in interface order.")


__all__ = [
    "DEFAULT_IMAGE", "DEFAULT_MEMORY", "DEFAULT_VCPUS", "EndpointInput", "LinkInput",
    "NetworkInput", "NodeInput", "NodeSettings", "TopologyInput",
]
