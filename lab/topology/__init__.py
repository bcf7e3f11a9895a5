"""Topologies: the YAML file a lab is described in, and the lab it resolves to.

    topo = load_topology(Path("topologies/pair.yaml"), overrides={"mem": "512"})
    topo.node("client").interfaces[0].ipv4   # IPv4Interface('10.0.1.1/24')

model.py holds the input models (what users write), expand.py the checks
across the file and the resolved `Topology`, schema.py the editor schema.
"""

from lab.topology.expand import Interface, Network, Node, Topology, expand, load_topology
from lab.topology.model import TopologyInput

__all__ = [
    "Interface", "Network", "Node", "Topology", "TopologyInput", "expand", "load_topology",
]
