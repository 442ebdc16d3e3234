"""Which of the host's CNI port rules Molecule's wait removes: only those of gone containers, for its own ports
(the rules as `iptables -t nat -S CNI-HOSTPORT-DNAT` prints them on this machine)."""

from __future__ import annotations

import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "molecule" / "resources"))
from cni_stale_ports import stale  # noqa: E402

RULES = """-N CNI-HOSTPORT-DNAT
-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"molsandbox\\" id: \\"6a2e16\\"" -m multiport --dports 2240 -j CNI-DN-c5d900d264429665fabec
-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"molsandbox\\" id: \\"fd4e99\\"" -m multiport --dports 2241,3041 -j CNI-DN-9d5e965c0097f71699a42
-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"migsandbox\\" id: \\"db4a4a\\"" -m multiport --dports 2230,55432 -j CNI-DN-817bda92ab74ae432dacf
"""  # noqa: E501


def test_only_a_gone_containers_rule_for_one_of_the_ports_is_stale():
    # fd4e99 is gone; 6a2e16 runs; db4a4a is gone but forwards none of Molecule's ports.
    found = stale(RULES, alive={"6a2e16"}, ports={"2240", "2241"})
    assert [(container, chain) for _line, container, chain in found] == [("fd4e99", "CNI-DN-9d5e965c0097f71699a42")]
    assert found[0][0].startswith("-A CNI-HOSTPORT-DNAT") and "--dports 2241,3041" in found[0][0]
    assert stale(RULES, alive={"6a2e16", "fd4e99", "db4a4a"}, ports={"2240", "2241", "2230"}) == []
